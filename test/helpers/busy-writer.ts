// Two sqlite3 processes (python3) that keep walnut's commits waiting for WRITE, on a database
// with table t(w, v): startBusyWriter, a writer that takes WRITE again right after each commit
// (sqlite-busy-writer.py; WRITE free only in gaps of tens of microseconds), waited for until its
// first commit shows, stop() ends it; holdWrite, one that holds WRITE until told
// (sqlite-hold-write.py: BEGIN IMMEDIATE, an INSERT into t), waited for until it holds it,
// commit() lets it commit, stop() waits for its exit (committing if commit() was not called).
import { execFileSync, spawn } from 'node:child_process';
import * as path from 'node:path';

import { HELPERS } from './children';

export interface BusyWriter {
  /** Ends the writer (SIGTERM) and waits for its exit. */
  stop(): Promise<void>;
}

/** Starts the writer on `file` for up to `seconds` (it runs until stop() however long the test's calls wait). */
export async function startBusyWriter(file: string, seconds: number): Promise<BusyWriter> {
  const child = spawn('python3', [path.join(HELPERS, 'sqlite-busy-writer.py'), file, String(seconds)], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM');
    await exited;
  };
  const rows = (): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, 'SELECT count(*) FROM t'], { encoding: 'utf8' }).trim();
  try {
    for (let i = 0; i < 2000 && rows() === '0'; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  } catch (e) {
    await stop();
    throw e;
  }
  return { stop };
}

export interface WriteHolder {
  /** Tells the holder to COMMIT (WRITE is free once it did); once, whatever the calls. */
  commit(): void;
  /** Tells it to COMMIT unless told already, and waits for its exit. */
  stop(): Promise<void>;
}

/** Starts a process holding WRITE on `file` (its transaction runs `sql`: by default inserts into t) and waits until it holds it. */
export async function holdWrite(file: string, sql = "INSERT INTO t VALUES (1, 'held')"): Promise<WriteHolder> {
  const child = spawn('python3', [path.join(HELPERS, 'sqlite-hold-write.py'), file, sql], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('close', (code) => reject(new Error(`the python3 holder exited (${code}) before it held WRITE`)));
  });
  let told = false;
  return {
    commit: () => {
      if (told) return; // a second end('commit') was a write after end: an 'error' nobody listens to (an unhandled error)
      told = true;
      child.stdin!.end('commit\n');
    },
    stop: async () => {
      child.stdin!.end(); // (at end of input it commits as when told; a second end() without data is harmless)
      await exited;
    },
  };
}
