// A python3 sqlite3 writer SIGKILLed between the two copies of its wal-index header publish
// (test/helpers/tear-header-shim.c, LD_PRELOAD: it dies at the instant copy 1 is written and copy
// 0 is not) beside a live walnut store. Its commit's frames are whole and synced in the WAL, so
// SQLite's recovery keeps it: every sqlite3 process that comes next sees the row. The store's
// own recovery (its next snapshot) kept it too, but it rewrote the header over a copy 0 that
// still held this store's last header, and dataVersion() (PRAGMA data_version) compared copy 0
// only: it did not change, although another connection's commit had become visible. walnut/sql
// validates its page cache with that number, so its next INSERT was built on the cached leaf
// page without python3's row and overwrote it: the row was gone for good (a lost update) and
// sqlite3 found 11 rows where 12 had been committed. A recovery that finds commits this
// connection had not met now changes dataVersion(), as SQLite's data_version changes.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { open } from '../../lib/commit/store';
import { tmpDir } from '../helpers/tmp';
import { buildTearHeaderShim } from '../helpers/tear-header-shim';

const dir = tmpDir();
let SHIM = '';
let shimError: string | null = null;

beforeAll(() => void ({ path: SHIM, error: shimError } = buildTearHeaderShim(dir)));

/** python3's sqlite3 inserts one row (w = 5) and is killed between its header's two copies; resolves with its signal. */
function tornCommit(db: string): Promise<string | number | null> {
  const code = [
    'import sqlite3, sys',
    'c = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)',
    "c.execute('PRAGMA wal_autocheckpoint=0')",
    "c.execute('INSERT INTO t(w, v) VALUES (5, randomblob(50))')",
    "print('acknowledged', flush=True)",
  ].join('\n');
  const child = spawn('python3', ['-c', code, db], { env: { ...process.env, LD_PRELOAD: SHIM, TEAR_SHM: `${db}-shm` }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve(out.includes('acknowledged') ? 'acknowledged' : (signal ?? code))));
}

function headerTorn(db: string): boolean {
  const h = fs.readFileSync(`${db}-shm`).subarray(0, 96);
  return !h.subarray(0, 48).equals(h.subarray(48, 96));
}

function sqlite3(db: string, sql: string): string {
  return execFileSync('sqlite3', ['-cmd', '.timeout 5000', db, sql], { encoding: 'utf8' }).trim();
}

describe('a sqlite3 writer killed between its two wal-index header copies, beside a live store', () => {
  it('walnut/sql: the next INSERT keeps the dead writer\'s commit (SQLite\'s recovery keeps it), nothing is overwritten', async (ctx) => {
    if (shimError !== null) ctx.skip(shimError);
    const db = path.join(dir, 'sql.db');
    const d = await openDatabase(db, { autoCheckpoint: false });
    try {
      await d.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
      for (let k = 0; k < 10; k++) await d.run('INSERT INTO t(w, v) VALUES (0, randomblob(100))');
      expect(await tornCommit(db)).toBe('SIGKILL');
      expect(headerTorn(db)).toBe(true);
      await d.run('INSERT INTO t(w, v) VALUES (0, randomblob(100))');
      expect(await d.all('SELECT w, count(*) AS n FROM t GROUP BY w ORDER BY w')).toEqual([
        { w: 0, n: 11 },
        { w: 5, n: 1 },
      ]);
    } finally {
      await d.close();
    }
    expect(sqlite3(db, 'PRAGMA integrity_check; SELECT w, count(*) FROM t GROUP BY w ORDER BY w').split('\n')).toEqual(['ok', '0|11', '5|1']);
  });

  it('the store: dataVersion() changes once its recovery finds the dead writer\'s commit', async (ctx) => {
    if (shimError !== null) ctx.skip(shimError);
    const db = path.join(dir, 'store.db');
    const d = await openDatabase(db, { autoCheckpoint: false });
    await d.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
    await d.close();
    const store = await open(db, { autoCheckpoint: false });
    try {
      const before = store.dataVersion();
      expect(await tornCommit(db)).toBe('SIGKILL');
      expect(headerTorn(db)).toBe(true);
      const snap = await store.snapshot(); // recovers the torn header
      snap.release();
      expect(headerTorn(db)).toBe(false);
      expect(store.dataVersion()).not.toBe(before);
    } finally {
      await store.close();
    }
    expect(sqlite3(db, 'SELECT w, count(*) FROM t GROUP BY w')).toBe('5|1');
  });
});
