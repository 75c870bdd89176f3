// `walnut export --read-only` and createExportStream(path, { readOnly: true }): an export that
// writes nothing to the database file or its -wal. `walnut export` opened its own read-write
// connection: as the last connection it checkpointed the -wal into the database file and removed
// the -wal and -shm at the end (a backup that changed what it backed up), and with --follow it
// restarted the WAL once another process's writer had checkpointed; open(path, { readOnly: true })
// had no counterpart in the CLI (inspect and verify write nothing of their own; recover rebuilds
// the -shm, checkpoint and restore write by design). With --read-only the connection is as a
// read-only store's (commit/read-only.ts): the file and the -wal keep every byte (sha256), the
// stream restores to every commit, and the run without it still closes as the last connection.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { describe, expect, it } from 'vitest';

import { createExportStream } from '../../lib/export/stream';
import { open } from '../../lib/open';
import { pythonSqlite, spawnOutput } from '../helpers/children';
import { expectWalnutError } from '../helpers/expect-error';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { fileAndWalSha256, walDatabaseIn } from '../helpers/read-only-files';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);
const dir = tmpDir('walnut-export-ro-');
let n = 0;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));



async function rowsOfStream(ark: string): Promise<string> {
  const restored = path.join(dir, `restored${n++}.db`);
  expect((await walnut('restore', ark, restored)).status).toBe(0);
  return (await spawnOutput('sqlite3', [restored, 'SELECT count(*) FROM t; PRAGMA integrity_check'])).stdout.trim();
}

describe('walnut export --read-only', () => {
  it('the last connection to the database: the file and its -wal keep every byte; without the flag it checkpoints and removes the -wal', async () => {
    const file = await walDatabaseIn(dir);
    const before = fileAndWalSha256(file);
    const ark = path.join(dir, `a${n++}.ark`);
    const r = await walnut('export', '--read-only', '-o', ark, file);
    expect(r.status, r.stderr).toBe(0);
    expect(fileAndWalSha256(file), 'export --read-only changed the database').toEqual(before);
    expect(await rowsOfStream(ark)).toBe('5\nok');
    // (what it keeps from happening: the same export without the flag)
    const plain = await walnut('export', '-o', path.join(dir, `b${n++}.ark`), file);
    expect(plain.status, plain.stderr).toBe(0);
    expect(fileAndWalSha256(file).wal).toBe('absent');
  });

  it("createExportStream readOnly with follow beside a sqlite3 writer that checkpointed does not restart the WAL (a read-write one does)", async () => {
    for (const readOnly of [true, false]) {
      const file = await walDatabaseIn(dir);
      // python3 commits; a walnut snapshot holds the WAL's end so python3's checkpoint copies all
      // without a restart after it; python3 commits more: frames after a complete checkpoint,
      // which a read-write follower copies into the file before it restarts the WAL
      const holder = await open(file, { readOnly: true });
      try {
        await pythonSqlite(file, "c.execute('PRAGMA wal_autocheckpoint=0')\nfor i in range(20): c.execute('INSERT INTO t(v) VALUES (?)', ('py',))");
        const held = await holder.snapshot();
        await pythonSqlite(file, "c.execute('PRAGMA wal_autocheckpoint=0')\nc.execute('PRAGMA wal_checkpoint(PASSIVE)')\nfor i in range(5): c.execute('INSERT INTO t(v) VALUES (?)', ('py2',))");
        held.release();
        const before = fileAndWalSha256(file);
        const ark = path.join(dir, `f${n++}.ark`);
        const out = fs.createWriteStream(ark);
        const stream = createExportStream(file, { follow: true, pollMs: 5, readOnly });
        stream.pipe(out);
        await sleep(600); // many restart attempts' worth
        await stream.stop();
        await new Promise<void>((resolve) => out.on('close', () => resolve()));
        if (readOnly) expect(fileAndWalSha256(file), 'the read-only follow restarted the WAL').toEqual(before);
        else expect(fileAndWalSha256(file)).not.toEqual(before);
        expect(await rowsOfStream(ark)).toBe('30\nok');
      } finally {
        await holder.close();
      }
    }
  });

  it('readOnly that is not a boolean is WALNUT_INVALID_ARGUMENT, reason readOnly', () => {
    for (const readOnly of ['yes', 1, null]) expectWalnutError(() => createExportStream(path.join(dir, 'any.db'), { readOnly } as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'readOnly' });
  });
});
