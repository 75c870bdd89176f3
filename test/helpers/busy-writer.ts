// A sqlite3 writer that takes WRITE again right after each commit (sqlite-busy-writer.py, python3),
// started on a database with table t(w, v) and waited for until its first commit shows; stop()
// ends it. For tests of walnut's lock waits beside such a writer (WRITE free only in gaps of
// tens of microseconds).
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
