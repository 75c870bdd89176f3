// An autocommit statement whose every run is longer than half the busy timeout, beside a python3
// sqlite3 process that commits a row every 10 ms. walnut/sql runs an overtaken statement again within
// busyTimeout and takes the WAL write lock for its third run (sql-long-write-beside-writer), but
// a statement of 0.7 s with busyTimeout 400 ms had used its time up at its first conflict: it
// failed WALNUT_CONFLICT after 1 or 2 runs, never under the lease, and so did every call the
// caller made again (each starts a new count): the starvation the lease was made for, for any
// write longer than busyTimeout / 2 (2.5 s by default). Now a statement overtaken with its time
// used up runs once more under the lease (its last chance) before it fails. Checked: it
// commits, the other process's acknowledged commits are all there and it commits again after
// (the lease was given back), integrity_check ok.
import { execFileSync, spawn } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
// about 0.7 s a run here (longer on a loaded machine): more than busyTimeout below
const ROWS = 200000;
const LONG_INSERT = `WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${ROWS}) INSERT INTO big SELECT randomblob(100) FROM c`;
// a steady writer that leaves WRITE free between its commits (the lease is had at once)
const STEADY = `
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
n = 0
end = time.time() + float(sys.argv[2])
while time.time() < end:
    c.execute("INSERT INTO t(w, v) VALUES (7, 'x')")
    n += 1
    time.sleep(0.01)
print(n)
`;

/** Runs STEADY on `file` for `seconds`; resolves with its commits. */
function steadyWriter(file: string, seconds: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', STEADY, file, String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`the python3 writer exited with ${code}`))));
  });
}

test('a statement longer than its busy timeout, overtaken, runs once more under the write lease and commits', async () => {
  const file = path.join(tmpDir(), 'past-timeout.db');
  const db = await openDatabase(file, { busyTimeout: 400 });
  try {
    await db.exec('CREATE TABLE t(w INTEGER, v BLOB); CREATE TABLE big(x BLOB)');
    const writer = steadyWriter(file, 4);
    for (let i = 0; i < 2000 && sqlite(file, 'SELECT count(*) FROM t') === '0'; i++) await sleep(5);
    const result = await db.run(LONG_INSERT);
    expect(result.changes).toBe(ROWS);
    expect(db.conflictRetries).toBeGreaterThanOrEqual(1); // it was overtaken (else this test proves nothing)
    expect(db.leasedRetries).toBe(1);
    const before = Number(sqlite(file, 'SELECT count(*) FROM t'));
    const made = await writer;
    expect(made).toBeGreaterThan(before); // the lease was given back: the other process committed after
    await db.close();
    expect(sqlite(file, 'SELECT count(*) FROM big')).toBe(String(ROWS));
    expect(Number(sqlite(file, 'SELECT count(*) FROM t'))).toBe(made);
    expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
  } finally {
    await db.close();
  }
}, 30000);
