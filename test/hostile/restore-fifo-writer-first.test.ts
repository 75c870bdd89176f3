// `walnut restore FIFO db` whose writer was there first (`mkfifo p; zcat app.ark.gz > p &
// walnut restore p restored.db`): restore's check that the stream's file can be read opened the
// FIFO (O_NONBLOCK) and closed it again before the stream's own open. That open let the waiting
// writer in; the close left the pipe without a reader, so the writer's data was dropped (or its
// write failed EPIPE) and it went away; the stream's open then waited for a writer for ever. The
// command hung (5 of 5 runs) with nothing on stderr. A writer that came after walnut was not hit.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { Database, sqliteWritesWal, typicalWork } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
/** A hang detector only: this restore takes well under a second on a quiet machine. */
const HANG_MS = 30_000;

/** The kernel function a process sleeps in (Linux), '' where it cannot be read. */
const wchan = (pid: number) => {
  try {
    return fs.readFileSync(`/proc/${pid}/wchan`, 'utf8');
  } catch {
    return '';
  }
};

describe('walnut restore from a FIFO whose writer is already waiting', () => {
  it('reads the whole stream and restores it (it hung: the writer was let in and cut off)', async () => {
    const db = sqliteWritesWal(dir, 'app', 4096, typicalWork(10, 3)).db;
    const ark = path.join(dir, 'app.ark');
    const exported = await spawnOutput(process.execPath, [bin, 'export', db, '-o', ark]);
    expect(exported.status, exported.stderr).toBe(0);
    const source = new Database(db, { readonly: true });
    const rows = source.prepare('SELECT * FROM t ORDER BY id').all();
    source.close();

    for (let round = 0; round < 3; round++) {
      const fifo = path.join(dir, `p${round}`);
      expect((await spawnOutput('mkfifo', [fifo])).status).toBe(0);
      // the writer first: the shell's open of the FIFO waits for a reader
      const writer = spawn('sh', ['-c', 'exec cat "$1" > "$2"', 'sh', ark, fifo], { stdio: 'ignore' });
      const writerDone = new Promise<number | null>((resolve) => writer.once('exit', (code) => resolve(code)));
      try {
        await until(() => wchan(writer.pid!) === 'wait_for_partner', 2000).catch(() => undefined); // (where wchan is hidden: a moment's start)
        const restored = path.join(dir, `restored${round}.db`);
        const r = await spawnOutput(process.execPath, [bin, 'restore', fifo, restored, '--json'], { timeout: HANG_MS });
        expect(r.signal, `round ${round}: hung`).toBe(null);
        expect(r.status, r.stderr).toBe(0);
        expect(JSON.parse(r.stdout)).toMatchObject({ stoppedBy: null });
        expect(await writerDone).toBe(0); // it wrote everything
        const back = new Database(restored, { readonly: true });
        expect(back.prepare('SELECT * FROM t ORDER BY id').all()).toEqual(rows);
        expect(back.pragma('integrity_check', { simple: true })).toBe('ok');
        back.close();
      } finally {
        writer.kill('SIGKILL');
      }
    }
  }, 4 * HANG_MS);
});
