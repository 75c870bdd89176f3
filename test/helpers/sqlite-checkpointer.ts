// Another process's checkpoint for tests: python3's sqlite3 (SQLite's own library) running
// PRAGMA wal_checkpoint (sqlite-checkpointer.py), the moment it holds the WAL's WRITE lock (a
// FULL, RESTART or TRUNCATE checkpoint takes it, then waits for readers), and what a completed
// one reports. Its JSON line: { results: [{ mode, busy, log, checkpointed, ms }], ckptBusy }.
import { spawn } from 'node:child_process';
import * as path from 'node:path';

import { expect } from 'vitest';

import { SHM_LOCK } from '../../lib/format/shm-header';
import { WalnutFile } from '../../lib/io/file';
import { HELPERS } from './children';
import { until, WAIT_MS } from './until';

export interface CheckpointRun {
  results: { mode: string; busy: number; log: number; checkpointed: number; ms: number }[];
  ckptBusy: number;
}

/**
 * The busy timeout of a checkpoint that must complete once what it waits for goes: a minute, not
 * 5 s, which a loaded machine spends between the checkpoint taking WRITE and the test letting its
 * reader or transaction go (a checkpoint walnut held up still waits it out and reports busy).
 */
export const PATIENT_MS = 60_000;

/** python3 checkpoints (sqlite-checkpointer.py): `modes` `rounds` times over, `delayMs` apart. */
export function checkpoints(file: string, modes: string[], rounds: number, delayMs = 100, busyMs = 5000): { pid: number; run: Promise<CheckpointRun> } {
  const child = spawn('python3', [path.join(HELPERS, 'sqlite-checkpointer.py'), file, modes.join(','), String(rounds), String(delayMs), String(busyMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const run = new Promise<CheckpointRun>((resolve, reject) => {
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as CheckpointRun) : reject(new Error(`sqlite-checkpointer.py exited with ${code}`))));
  });
  return { pid: child.pid!, run };
}

/** Resolves once process `pid` holds `file`'s WAL write lock (SQLite's POSIX locks name their process; a hang guard of WAIT_MS). */
export async function holdsWrite(file: string, pid: number): Promise<void> {
  const shm = WalnutFile.openSync(`${file}-shm`);
  try {
    await until(() => shm.lockHolder(SHM_LOCK.WRITE, 1, 'shared')?.pid === pid, WAIT_MS, () => 'the checkpointer never took WRITE'); // (a python3 start at load 20+ is seconds)
  } finally {
    shm.closeSync();
  }
}

/** Every checkpoint reached its goal: not busy (a timeout), and a truncate left an empty WAL. */
export function expectCompleted(run: CheckpointRun): void {
  for (const r of run.results) {
    expect(r, JSON.stringify(r)).toMatchObject({ busy: 0 });
    if (r.mode === 'TRUNCATE') expect(r, JSON.stringify(r)).toMatchObject({ log: 0, checkpointed: 0 });
    else expect(r.checkpointed, JSON.stringify(r)).toBe(r.log);
  }
}
