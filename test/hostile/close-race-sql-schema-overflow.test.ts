// walnut/sql's SchemaStackOverflow (SQLite's wasm stack running out while it loads the schema:
// the call fails, its connection gets a fresh wasm instance: lib/sql/connection.ts reopen())
// raced against close(), at every interleaving of outcomes.ts CLOSE_INTERLEAVINGS and a few
// millisecond into close(). Per round a handle is open on a database whose schema it loaded,
// then real SQLite (better-sqlite3) commits a view nested 30,000 COLLATEs deep before a UNIQUE
// index on t(x) (test/helpers/sqlite-deep-schema.py says why that overflows), and the verb
// (run, transaction on the writer; get on a read connection) goes with close().
// Asserted: the verb rejects WALNUT_SQL (SchemaStackOverflow) or WALNUT_CLOSED, never anything
// else; close() resolves; no duplicate of the row is written (sqlite3: integrity ok, one row);
// no unhandled rejection; nothing of the database is still open in this process (no descriptor
// of it: a reopen that came after close() would keep one) and no lock is left (sqlite3 drops the
// view, writes, and its TRUNCATE checkpoint is not busy).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase, type Database as SqlDatabase } from '../../lib/sql';
import { closeRaces, expectNoUnhandledRejections } from '../helpers/outcomes';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir();
let n = 0;

const VERBS: { name: string; readConnections: number; run: (db: SqlDatabase) => Promise<unknown> }[] = [
  { name: 'run (writer)', readConnections: 0, run: (db) => db.run('INSERT INTO t VALUES (1)') },
  { name: 'get (a read connection)', readConnections: 2, run: (db) => db.get('SELECT count(*) AS n FROM t') },
  { name: 'transaction', readConnections: 0, run: (db) => db.transaction((tx) => tx.run('INSERT INTO t VALUES (1)')) },
];

/** CLOSE_INTERLEAVINGS, then close() first and the verb 1 ms into it. */
const WHEN = closeRaces([1]);

/** A WAL-mode database: t(x) holding the row 1. */
function initDatabase(file: string): void {
  const s = new Database(file);
  try {
    s.pragma('journal_mode = WAL');
    s.exec('CREATE TABLE t(x); INSERT INTO t VALUES (1)');
  } finally {
    s.close();
  }
}

/** Real SQLite commits the view (30,000 COLLATEs) before a UNIQUE index on t(x), as another connection. */
function deepen(file: string): void {
  const s = new Database(file, { timeout: 5000 });
  try {
    s.exec(`BEGIN; CREATE VIEW deep AS SELECT x${' COLLATE BINARY'.repeat(30_000)} AS y FROM t; CREATE UNIQUE INDEX t_x ON t(x); COMMIT`);
  } finally {
    s.close();
  }
}

/** This process's descriptors of files in `d`. */
function descriptorsIn(d: string): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(`${d}/`)) out.push(target);
    } catch {
      // (closed meanwhile)
    }
  }
  return out;
}

describe('a SchemaStackOverflow call against close()', () => {
  for (const verb of VERBS) {
    it(`${verb.name}: WALNUT_SQL (SchemaStackOverflow) or WALNUT_CLOSED; close() resolves; no duplicate, nothing left open, no lock`, async () => {
      const seen: string[] = [];
      for (const [name, run] of WHEN) {
        const d = path.join(dir, `r${n++}`);
        fs.mkdirSync(d);
        const file = path.join(d, 'app.db');
        initDatabase(file);
        const db = await openDatabase(file, { readConnections: verb.readConnections });
        expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: 1 }); // the schema loaded
        deepen(file);
        const [v, closed] = await run(() => verb.run(db), () => db.close());
        seen.push(`${name}: ${v.ok ? 'ok' : v.code}`);
        expect(closed, name).toEqual({ ok: true, value: undefined });
        expect(v.ok, `${name}: answered against a half-loaded schema`).toBe(false);
        if (!v.ok) {
          expect(v.walnut, `${name}: ${v.message}`).toBe(true);
          expect(['WALNUT_SQL', 'WALNUT_CLOSED'], `${name}: ${v.message}`).toContain(v.code);
          if (v.code === 'WALNUT_SQL') expect(v.message, name).toMatch(/stack/i);
        }
        await new Promise((r) => setTimeout(r, 20)); // (a reopen still under way after close() would open its files by now)
        expect(descriptorsIn(d), `${name}: files of the database still open after close()`).toEqual([]);
        expect(execFileSync('sqlite3', [file, 'PRAGMA integrity_check; SELECT count(*) FROM t'], { encoding: 'utf8' }).trim(), name).toBe('ok\n1');
        const s = new Database(file, { timeout: 2000 });
        try {
          s.exec('DROP VIEW deep; INSERT INTO t VALUES (2)');
          expect((s.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[])[0]!.busy, `${name}: a lock left`).toBe(0);
        } finally {
          s.close();
        }
      }
      console.log(`${verb.name} against close(): ${seen.join('; ')}`);
    });
  }
});
