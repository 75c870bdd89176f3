// Hostile: `walnut export app.db -o new.ark --follow` (a FILE it creates) that fails long after
// its base image is in: a failed export removed the FILE it created, so a follow that had run for
// hours and then met a full disk deleted the whole backup, every commit it held. A follow's FILE
// is now removed only while it does not hold the database as of the start yet (the stream's
// 'caughtUp' written); after that a failure leaves it, and it restores to its last complete
// commit. Before that point SIGTERM removes it and ends the process by the signal (a cut stream
// inside its base image does not restore; it used to stay, exit 0).
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { DB_LOCK } from '../../lib/format/db-header';
import { holdLock, release, spawnOutput } from '../helpers/children';
import { commitsInStreamFile } from '../helpers/export-stream';
import { MOUNT_SKIP, smallTmpfs } from '../helpers/small-fs';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);

function database(name: string, rows: number): string {
  const file = path.join(dir, name);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
  const insert = db.prepare('INSERT INTO t(v) VALUES (randomblob(1000))');
  for (let i = 0; i < rows; i++) insert.run();
  db.close();
  return file;
}

function follow(db: string, ark: string): { exited: Promise<{ status: number | null; signal: NodeJS.Signals | null }>; stderr: () => string; kill: (s: NodeJS.Signals) => void } {
  const child = spawn(process.execPath, [bin, 'export', db, '-o', ark, '--follow'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (status, signal) => resolve({ status, signal })));
  return { exited, stderr: () => stderr, kill: (s) => child.kill(s) };
}

describe('walnut export --follow -o FILE it creates', () => {
  it.skipIf(MOUNT_SKIP !== null)(`failing on a full disk after its base is in keeps FILE, which restores to its last complete commit${MOUNT_SKIP === null ? '' : ` (${MOUNT_SKIP})`}`, async () => {
    const db = database('full.db', 10);
    const disk = smallTmpfs('1m');
    const ark = path.join(disk, 'app.ark');
    const f = follow(db, ark);
    const writer = new Database(db);
    const insert = writer.prepare('INSERT INTO t(v) VALUES (randomblob(?))');
    insert.run(1000);
    await until(() => commitsInStreamFile(ark) >= 1, WAIT_MS, () => ({ stderr: f.stderr() })); // a commit after the base: the first pass is in
    for (let i = 0; i < 40; i++) insert.run(64 * 1024); // ~2.6 MiB: more than the disk holds
    writer.close();
    const r = await f.exited;
    expect(f.stderr()).toMatch(/^walnut: WALNUT_FULL/m);
    expect(r.status).toBe(2);
    expect(fs.existsSync(ark)).toBe(true); // (removed, with every commit it held, before)
    const restored = path.join(dir, 'full-restored.db');
    const back = await walnut('restore', ark, restored, '--json');
    expect(back.status, back.stderr).toBe(0);
    expect(execFileSync('sqlite3', [restored, 'PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('ok');
    expect(Number(execFileSync('sqlite3', [restored, 'SELECT count(*) FROM t'], { encoding: 'utf8' }).trim())).toBeGreaterThanOrEqual(11);
  }, 120_000);

  it('SIGTERMed before its base is in (waiting for a busy database): FILE removed, ended by the signal', async () => {
    const db = database('busy.db', 10);
    const ark = path.join(dir, 'busy.ark');
    const holder = await holdLock(db, DB_LOCK.SHARED_FIRST, DB_LOCK.SHARED_SIZE, 'exclusive', 'classic');
    try {
      const f = follow(db, ark);
      await until(() => fs.existsSync(ark), WAIT_MS); // created: the export has begun
      f.kill('SIGTERM');
      const r = await f.exited;
      expect(r.signal, f.stderr()).toBe('SIGTERM');
    } finally {
      await release(holder);
    }
    expect(fs.existsSync(ark)).toBe(false);
  }, 60_000);
});
