// `walnut restore --force` over a database whose -wal still has commits first checkpoints that
// -wal into it (checkpointOldDatabase: a WalIndex opened on the old database, a passive
// checkpoint, its -wal and -shm removed as SQLite's last connection does) and only then moves its
// companions aside and renames the new file in. The restore took its temporary file out of the
// set a SIGINT/SIGTERM handler abandons (liveTemporaries) before that checkpoint, so a signal
// during it (as long as copying the old -wal takes: ~250 ms for 40 MB here) ended the process
// with the temporary file, as large as the new database, and the marker left beside the target,
// hidden, until some later walnut open or restore of that target settled them (a sqlite3 user
// never does). Measured with a 41 MB old -wal, kills at random moments of the restore: 13 of 40
// left both. The target must be all that is left, whole (the old database, its commits intact).
// Killed here when the checkpoint's -shm appears (the old database had none).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { Database, sqliteWritesWal } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const OLD_ROWS = 8000;
const NEW_ROWS = 100;

/** An export stream of a small database (the restore's new content: 100 rows). */
function newStream(): string {
  const src = path.join(dir, 'new-src.db');
  const db = new Database(src);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
  const insert = db.prepare('INSERT INTO t(v) VALUES (randomblob(100))');
  for (let i = 0; i < NEW_ROWS; i++) insert.run();
  db.close();
  const ark = path.join(dir, 'new.ark');
  const r = spawnSync(process.execPath, [bin, 'export', src, '-o', ark]);
  expect(r.status, String(r.stderr)).toBe(0);
  return ark;
}

/** What a restore leaves beside its target: its marker, its temporary file, asides. */
const temporaries = (sub: string): string[] => fs.readdirSync(sub).filter((n) => n.includes('.restore-'));

describe('walnut restore --force interrupted while it checkpoints the old database', () => {
  const ark = newStream();
  // the old database: its commits in a -wal of ~33 MB, copied while its connection was open (no -shm)
  const old = sqliteWritesWal(dir, 'old', 4096, (db) => {
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
    const insert = db.prepare('INSERT INTO t(v) VALUES (randomblob(3000))');
    db.transaction(() => {
      for (let i = 0; i < OLD_ROWS; i++) insert.run();
    })();
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal}: no temporary file or marker left, the old database whole, ended by the signal`, async () => {
      const sub = fs.mkdtempSync(path.join(dir, 'target-'));
      const target = path.join(sub, 'restored.db');
      fs.copyFileSync(old.db, target);
      fs.copyFileSync(old.wal, `${target}-wal`);
      const restorer = spawn(process.execPath, [bin, 'restore', ark, target, '--force'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      restorer.stderr!.on('data', (d) => (stderr += d));
      const exited = new Promise<[number | null, string | null]>((resolve) => restorer.once('exit', (code, sig) => resolve([code, sig])));
      let ended = false;
      void exited.then(() => (ended = true));
      // the checkpoint has begun once the old database has a -shm (its WalIndex made it)
      while (!ended && !fs.existsSync(`${target}-shm`)) await new Promise((r) => setTimeout(r, 1));
      restorer.kill(signal);
      const [code, sig] = await exited;
      const left = temporaries(sub);
      expect([code, sig], stderr).toEqual([null, signal]);
      expect(left).toEqual([]);
      const db = new Database(target, { readonly: true });
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        // the old database (killed during the checkpoint, as nearly always), or the new one when a
        // loaded machine let the kill come after the rename: whole either way
        expect([OLD_ROWS, NEW_ROWS]).toContain((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n);
      } finally {
        db.close();
      }
    }, 60_000);
  }
});
