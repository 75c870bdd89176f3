// `walnut checkpoint` ended by a signal mid-work, beside a python3 sqlite3 writer (SQLite's own
// library, another process) on a WAL of 16,000+ frames (512-byte pages: 4+ wal-index segments):
// the CLI family's checkpoint raced against its end (cli-scale-signals does export, verify and
// restore). The command keeps no listener of its own for SIGINT, SIGTERM or SIGHUP (it makes no
// file to take back), so each ends it at once, as SIGKILL does, wherever the copy is: frames
// copied into the database file but nBackfill not yet stored, or the WAL being restarted. The
// process is frozen with SIGSTOP once it has the -wal open, so the signal lands mid-command at
// any machine speed. Asserted for each mode and signal: the command ends by the signal (or had
// finished, status 0); the writer is never refused and goes on committing after it (no lock of
// the dead process left); at the end the writer's close, the last connection's, checkpoints, and
// SQLite finds every row it committed, integrity ok, and walnut's verify (level 5) agrees.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { verify } from '../../lib/index';
import { processHasOpen } from '../helpers/children';
import { segmentEnd, shmMxFrame, startWalFiller } from '../helpers/large-wal';
import { sqliteIntegrity, sqliteRowCount, walDatabase } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const TARGET = segmentEnd(3) + 200;


/** `walnut checkpoint` frozen once it has the -wal open, sent `signal`, let go on: how it ended. */
async function interruptedCheckpoint(db: string, mode: string, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child: ChildProcess = spawn(process.execPath, [bin, 'checkpoint', db, '--mode', mode], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const ended = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, sig) => resolve([code, sig])));
  try {
    await until(() => child.exitCode !== null || child.signalCode !== null || processHasOpen(child.pid!, `${db}-wal`), WAIT_MS, () => stderr);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGSTOP');
      child.kill(signal);
      child.kill('SIGCONT');
    }
    const [code, sig] = await ended;
    return { code, signal: sig, stderr };
  } finally {
    child.kill('SIGKILL');
  }
}

/** The writer's rows as a new sqlite3 connection sees them (it reads through the -shm the writer keeps). */
const committed = (db: string) => sqliteRowCount(db, 't');

describe('walnut checkpoint ended by a signal beside a python3 writer, a WAL of 16,000+ frames', () => {
  it('truncate/SIGINT, restart/SIGTERM, full/SIGHUP, passive/SIGKILL: each ends by its signal; the writer goes on; every row there, integrity ok', async () => {
    const db = walDatabase(path.join(dir, 'app.db'), 512, 'CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
    const writer = startWalFiller(db, TARGET, 't');
    let rows = -1;
    try {
      await writer.filled;
      expect(shmMxFrame(db)).toBeGreaterThan(segmentEnd(3));
      const seen: string[] = [];
      for (const [mode, signal] of [['truncate', 'SIGINT'], ['restart', 'SIGTERM'], ['full', 'SIGHUP'], ['passive', 'SIGKILL']] as const) {
        const r = await interruptedCheckpoint(db, mode, signal);
        seen.push(`${mode}/${signal}: ${r.signal ?? `status ${r.code}`}`);
        if (r.signal === null) expect(r, `${mode}: finished before the signal`).toMatchObject({ code: 0, stderr: '' });
        else expect(r.signal, `${mode}: ${r.stderr}`).toBe(signal);
        const before = committed(db);
        await until(() => committed(db) > before + 5, WAIT_MS, () => committed(db)); // nothing of the dead command holds the writer up
      }
      console.log(`walnut checkpoint interrupted: ${seen.join('; ')}`);
    } finally {
      writer.stop();
      rows = await writer.done;
    }
    expect(fs.existsSync(`${db}-wal`), "the writer's close, the last, checkpoints and removes the -wal").toBe(false);
    expect(sqliteIntegrity(db)).toEqual(['ok']);
    expect(committed(db)).toBe(rows);
    expect((await verify(db, 5)).issues).toEqual([]);
  });
});
