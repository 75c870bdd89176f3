// Hostile: `walnut restore new.ark app.db --force` while a python3 sqlite3 writer opens the old
// database. restore checked for connections (their locks) before it checkpointed the old
// database's -wal, and not after: a writer that opened app.db during that checkpoint (seconds for
// a large -wal) kept its connection, committed, and the restore then moved its live -wal and -shm
// aside, renamed the new file in and removed them: restore exit 0, the writer's acknowledged
// commit gone, its connection left on the replaced file. Now the check is made by taking the
// connections' locks (the database's PENDING, RESERVED and SHARED bytes, the -shm's DMS byte)
// after the checkpoint and holding them to the rename: the restore refuses (WALNUT_BUSY, reason
// InUse) and the writer's commits stay in the old database. An LD_PRELOAD shim
// (test/helpers/pause-at-lock-shim.c) holds the restore at its checkpoint's first -shm lock while
// the writer opens and commits.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { newDatabaseStream } from '../helpers/new-database-stream';
import { buildPauseAtLockShim } from '../helpers/pause-at-lock-shim';
import { tmpDir } from '../helpers/tmp';
import { oldWalDatabase } from '../helpers/old-wal-database';
import { until } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const shim = buildPauseAtLockShim(dir);

/** A python3 sqlite3 writer on `db`: commits one 'py' row per line read, says 'committed <n>' or 'error <message>'; closes at EOF. */
function pythonWriter(db: string) {
  const py = `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
n = 0
for line in sys.stdin:
    try:
        c.execute("INSERT INTO t(who, v) VALUES ('py', randomblob(100))")
        n += 1
        print('committed', n, flush=True)
    except sqlite3.Error as e:
        print('error', e, flush=True)
c.close()
`;
  const child = spawn('python3', ['-c', py, db], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const commit = async (): Promise<string> => {
    const before = out.length;
    child.stdin.write('x\n');
    for (const end = Date.now() + 20_000; !out.slice(before).includes('\n'); ) {
      if (Date.now() > end) throw new Error('the python3 writer did not answer');
      await new Promise((r) => setTimeout(r, 10));
    }
    return out.slice(before).trim();
  };
  const close = () => new Promise<void>((resolve) => {
    child.on('close', () => resolve());
    child.stdin.end();
  });
  return { commit, close };
}

describe.skipIf(shim.error !== null)('walnut restore --force beside a writer that opens the old database during its checkpoint', () => {
  it('refuses (WALNUT_BUSY InUse) and the writer\'s commits stay in the old database', async () => {
    const ark = await newDatabaseStream(dir, true);

    // the old database: 10 rows in the file, 20 more only in its -wal (no connection open now)
    const db = path.join(dir, 'app.db');
    oldWalDatabase(db);

    // the restore, held at its checkpoint of the old -wal (its first lock of app.db-shm)
    const ready = path.join(dir, 'ready');
    const go = path.join(dir, 'go');
    const restore = spawn(process.execPath, [bin, 'restore', ark, db, '--force'], {
      env: { ...process.env, LD_PRELOAD: shim.path, PAUSE_LOCK_NAME: 'app.db-shm', PAUSE_LOCK_READY: ready, PAUSE_LOCK_GO: go },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    restore.stderr.on('data', (d) => (stderr += d));
    const ended = new Promise<number | null>((resolve) => restore.on('close', (code) => resolve(code)));
    await until(() => fs.existsSync(ready), 30_000);

    // meanwhile a writer opens the old database and commits; it keeps its connection
    const py = pythonWriter(db);
    expect(await py.commit()).toBe('committed 1');
    fs.writeFileSync(go, '');
    const status = await ended;
    expect(stderr).toMatch(/WALNUT_BUSY/);
    expect(status).toBe(2);

    // the writer goes on in the old database, which holds every commit
    expect(await py.commit()).toBe('committed 2');
    await py.close();
    expect(execFileSync('sqlite3', [db, 'PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('ok');
    expect(execFileSync('sqlite3', [db, "SELECT who || ':' || count(*) FROM t GROUP BY who"], { encoding: 'utf8' }).trim()).toBe('old:30\npy:2');
    expect(fs.readdirSync(dir).filter((n) => n.includes('.restore-'))).toEqual([]);
  }, 90_000);
});
