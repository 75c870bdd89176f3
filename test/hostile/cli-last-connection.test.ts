// The walnut command closes like SQLite's last connection: `walnut checkpoint` and `walnut
// export` on a database nobody else has open leave no -wal/-shm behind (sqlite3 removes them as
// its last connection closes), and they leave them when another connection has it open.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { createExportStream } from '../../lib/export/stream';
import { spawnOutput } from '../helpers/children';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
// awaited, not spawnSync: a test's run of them holds the vitest worker's event loop (14-17 s at
// load 15), and its RPC times out at 60 s
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);
let n = 0;

/** A WAL-mode database SQLite wrote and closed: no -wal, no -shm. */
function closedSqliteDb(): string {
  const db = path.join(dir, `db${n++}.db`);
  const s = new Database(db);
  s.pragma('journal_mode = WAL');
  s.exec('CREATE TABLE t(a); INSERT INTO t VALUES (1), (2)');
  s.close();
  expect(fs.existsSync(`${db}-wal`) || fs.existsSync(`${db}-shm`)).toBe(false);
  return db;
}

const companions = (db: string) => [fs.existsSync(`${db}-wal`), fs.existsSync(`${db}-shm`)];
const rows = (db: string) => {
  const s = new Database(db, { readonly: true });
  try {
    return s.prepare('SELECT count(*) AS c FROM t').get();
  } finally {
    s.close();
  }
};

describe('the walnut command as the last connection', () => {
  it('checkpoint (every mode) leaves no -wal/-shm on a database nobody has open', async () => {
    for (const mode of ['passive', 'full', 'restart', 'truncate']) {
      const db = closedSqliteDb();
      const r = await walnut('checkpoint', db, '--mode', mode, '--json');
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(companions(db), mode).toEqual([false, false]);
      expect(rows(db)).toEqual({ c: 2 });
    }
  });

  it('export -o leaves no -wal/-shm on a database nobody has open; the stream restores', async () => {
    const db = closedSqliteDb();
    const ark = path.join(dir, `x${n}.ark`);
    const r = await walnut('export', db, '-o', ark, '--json');
    expect(r.status).toBe(0);
    expect(companions(db)).toEqual([false, false]);
    const restored = path.join(dir, `restored${n}.db`);
    expect((await walnut('restore', ark, restored)).status).toBe(0);
    expect(rows(restored)).toEqual({ c: 2 });
  });

  it('createExportStream: the same for the library call, done by the stream\'s end', async () => {
    const db = closedSqliteDb();
    const chunks: Buffer[] = [];
    for await (const c of createExportStream(db)) chunks.push(c as Buffer); // ends once the connection has closed
    expect(Buffer.concat(chunks).subarray(0, 8).toString()).toBe('ARKHEXP1');
    expect(companions(db)).toEqual([false, false]);
  });

  it('recover (and recover --repair) on a database without a WAL leaves no empty -wal/-shm behind; with a WAL it rebuilds the -shm', async () => {
    for (const extra of [[], ['--repair']]) {
      const db = closedSqliteDb();
      const r = await walnut('recover', db, ...extra, '--json');
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ walFrames: 0, commits: 0 });
      expect(companions(db), extra.join(' ')).toEqual([false, false]);
      expect(rows(db)).toEqual({ c: 2 });
    }
    const db = closedSqliteDb();
    const other = new Database(db);
    other.prepare('INSERT INTO t VALUES (3)').run();
    const shmSize = fs.statSync(`${db}-shm`).size;
    fs.copyFileSync(`${db}-wal`, `${db}.wal-copy`);
    other.close(); // checkpoints, removes both; put the WAL back as a crash would have left it
    fs.copyFileSync(`${db}.wal-copy`, `${db}-wal`);
    const r = await walnut('recover', db, '--json');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).walFrames).toBeGreaterThan(0);
    expect(companions(db)).toEqual([true, true]); // what recover is for: the rebuilt -shm stays
    expect(fs.statSync(`${db}-shm`).size).toBe(shmSize);
  });

  it('replicate with an option the replication refuses (a stream name, --replicas, no server) exits 2 and leaves no -wal/-shm (its store was never closed)', async () => {
    for (const extra of [['--stream', 'a.b'], ['--stream', 's', '--replicas', '9'], ['--stream', 's', '--nats', '']]) {
      const db = closedSqliteDb();
      const r = await walnut('replicate', db, '--nats', 'nats://127.0.0.1:1', ...extra);
      expect(r.status, extra.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: /);
      expect(companions(db), extra.join(' ')).toEqual([false, false]);
    }
  });

  it('both leave the -wal/-shm when another connection has the database open', async () => {
    const db = closedSqliteDb();
    const other = new Database(db);
    try {
      other.prepare('INSERT INTO t VALUES (3)').run();
      expect((await walnut('checkpoint', db, '--json')).status).toBe(0);
      expect((await walnut('export', db, '-o', path.join(dir, `busy${n}.ark`), '--json')).status).toBe(0);
      expect(companions(db)).toEqual([true, true]);
      expect(other.prepare('SELECT count(*) AS c FROM t').get()).toEqual({ c: 3 });
    } finally {
      other.close();
    }
  });
});
