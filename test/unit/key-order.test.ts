// How level 2 reads an index's key order from the schema: certain cases give the order, anything
// it cannot read with certainty gives null (the index's key order is then not checked).
import { describe, expect, it } from 'vitest';

import { indexKeyOrder, type SchemaEntry } from '../../lib/integrity/key-order';

const table = (name: string, sql: string): SchemaEntry => ({ type: 'table', name, tblName: name, sql });
const index = (name: string, tbl: string, sql: string | null): SchemaEntry => ({ type: 'index', name, tblName: tbl, sql });

describe('indexKeyOrder', () => {
  const t = table('t', 'CREATE TABLE t(a TEXT COLLATE NOCASE, "b c" TEXT, d INTEGER, e TEXT COLLATE RTRIM)');
  const order = (sql: string | null, tbl: SchemaEntry = t, encoding = 1) => indexKeyOrder(index('i', tbl.name, sql), [tbl], encoding);

  it('reads explicit and declared collations and directions', () => {
    expect(order('CREATE INDEX i ON t(a)')).toEqual([{ collation: 'nocase', desc: false }]);
    expect(order('CREATE INDEX i ON t(a COLLATE BINARY DESC, "b c", e)')).toEqual([
      { collation: 'binary', desc: true },
      { collation: 'binary', desc: false },
      { collation: 'rtrim', desc: false },
    ]);
    expect(order('create unique index if not exists main.i on t (d desc, "b c" collate nocase asc) where d > 0')).toEqual([
      { collation: 'binary', desc: true },
      { collation: 'nocase', desc: false },
    ]);
    const plain = table('p', 'CREATE TABLE p(x, y)');
    expect(order('CREATE INDEX i ON p(x, y)', plain)).toEqual([]);
    expect(order(null, plain)).toEqual([]); // an auto-index of a table without COLLATE or DESC
  });

  it('gives null where it cannot be certain', () => {
    expect(order('CREATE INDEX i ON t(lower(a))')).toBeNull(); // an expression
    expect(order('CREATE INDEX i ON t(a COLLATE my_collation)')).toBeNull();
    expect(order('CREATE INDEX i ON t(a)', t, 2)).toBeNull(); // NOCASE in a UTF-16 database
    expect(order(null)).toBeNull(); // an auto-index of a table with COLLATE
    expect(order('CREATE INDEX i ON t(zz)')).toBeNull(); // no such column declared
    const tricky = table('k', "CREATE TABLE k(a TEXT DEFAULT 'x' COLLATE NOCASE, b TEXT CHECK (b <> 'COLLATE RTRIM'))");
    expect(order('CREATE INDEX i ON k(a)', tricky)).toBeNull();
    expect(order('CREATE INDEX i ON k(b)', tricky)).toBeNull();
    const withoutRowid: SchemaEntry = table('w', 'CREATE TABLE w(a TEXT PRIMARY KEY COLLATE NOCASE) WITHOUT ROWID');
    expect(indexKeyOrder(withoutRowid, [withoutRowid], 1)).toBeNull();
  });
});
