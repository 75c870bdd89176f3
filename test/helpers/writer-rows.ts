// The rows of t(id, w, v) that the writer tests fill (sqlite-writer.py, walnut committers), read
// with SQLite itself, and where two such lists first differ.
import { Database } from './sqlite';

export type WriterRow = { id: number; w: number; v: Buffer };

export function writerRows(db: string): WriterRow[] {
  const d = new Database(db, { readonly: true });
  try {
    return d.prepare('SELECT id, w, v FROM t ORDER BY id').all() as WriterRow[];
  } finally {
    d.close();
  }
}

/** The first row where `a` and `b` differ (null: none); a deep toEqual of thousands of blobs takes minutes. */
export function firstDifference(a: WriterRow[], b: WriterRow[]): number | null {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined || y === undefined || x.id !== y.id || x.w !== y.w || !x.v.equals(y.v)) return i;
  }
  return null;
}
