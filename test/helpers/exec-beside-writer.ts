// exec() calls (or any calls: callsBesideWriter) beside a python3 writer (sqlite-writer.py committing one row per transaction into
// t(w, v) in a tight loop, synchronous NORMAL, no auto-checkpoint): the pattern of the
// test/hostile/sql-exec-rerun-* tests. The database must hold t(w, v); the writer starts once
// the caller's database is set up and stops when the calls are done.
import * as path from 'node:path';

import { isWalnutError, type Database } from '../../lib/sql';
import { HELPERS, startPython } from './children';
import { shmMxFrame, untilWalMoves } from './large-wal';

/** One exec() call: its key k and 'ok' or its failure (`code/reason: message`). */
export interface ExecCall {
  k: number;
  result: string;
}

/**
 * Runs `callers` callers' exec() calls for `ms` beside a python3 writer on `db`'s file (`file`):
 * caller c runs `textOf(c, k)` with k taken in turn (0, `step`, 2 × `step`, ..). A rejection
 * that is not a WalnutError fails the run. The outcome of each call, the writer's commits.
 */
export function execBesideWriter(db: Database, file: string, callers: number, ms: number, textOf: (caller: number, k: number) => string, step = 1, tested?: (calls: ExecCall[]) => boolean): Promise<{ calls: ExecCall[]; commits: number }> {
  return callsBesideWriter(file, callers, ms, (caller, k) => db.exec(textOf(caller, k)), step, tested);
}

/** How long the calls go on past `ms` while `tested` says nothing was tested yet (a loaded machine's writer may not have got in). */
const TESTED_BOUND_MS = 15_000;

/**
 * As execBesideWriter, each call being `call(c, k)` (any calls of the database on `file`).
 * `tested`: the calls go on past `ms` (at most TESTED_BOUND_MS in all) until it is true of those
 * made so far (a test's "the other process got in between" then holds however slow the machine).
 */
export async function callsBesideWriter(file: string, callers: number, ms: number, call: (caller: number, k: number) => Promise<unknown>, step = 1, tested?: (calls: ExecCall[]) => boolean): Promise<{ calls: ExecCall[]; commits: number }> {
  const python = startPython(path.join(HELPERS, 'sqlite-writer.py'), [file, '30', '1', '0', '0', '0', '0', 'NORMAL']);
  const calls: ExecCall[] = [];
  try {
    await untilWalMoves(file, shmMxFrame(file));
    let next = 0;
    const [deadline, bound] = [Date.now() + ms, Date.now() + TESTED_BOUND_MS];
    const goOn = (): boolean => Date.now() < deadline || (tested !== undefined && !tested(calls) && Date.now() < bound);
    await Promise.all(
      Array.from({ length: callers }, async (_, caller) => {
        while (goOn()) {
          const k = next;
          next += step;
          const result = await call(caller, k).then(
            () => 'ok',
            (e: unknown) => {
              if (!isWalnutError(e)) throw e;
              return `${e.code}/${e.reason}: ${e.message}`;
            },
          );
          calls.push({ k, result });
        }
      }),
    );
  } finally {
    python.stop();
  }
  return { calls, commits: Number((await python.output).trim()) };
}
