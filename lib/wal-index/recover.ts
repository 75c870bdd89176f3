/**
 * wal-index/recover.ts — rebuildWalIndex as the public API gives it (`walnut recover`): a path
 * and `{ busyTimeout }`, nothing else. The wal-index's own rebuild (wal-index.ts) takes its
 * internal options too (convert, lockingMode, a repair hook, a new page 1), which a recovery
 * must never be asked for from outside: `{ convert: true }` converted a rollback-journal
 * database. Anything else is WALNUT_INVALID_ARGUMENT (reason 'options') before anything is opened.
 */
import { readInput, refuseExtraArguments } from '../arguments';
import { walnutError } from '../errors';
import { unknownOptionName } from '../option-names';
import { rebuildWalIndex as rebuild } from './wal-index';

export interface RecoverOptions {
  /** Milliseconds to retry locks held elsewhere before WALNUT_BUSY (default 5000). */
  busyTimeout?: number;
}

/**
 * Rebuilds a database's -shm from its -wal, as SQLite's recovery does; see wal-index.ts. Resolves
 * with the frames the WAL holds up to its last commit and the database's page size.
 */
export async function rebuildWalIndex(dbPath: string, options?: RecoverOptions): Promise<{ walFrames: number; pageSize: number }> {
  refuseExtraArguments('rebuildWalIndex', 'a path and options', 2, arguments); // (a rejection: this function is async)
  const busyTimeout = readInput('options', () => checkRecoverOptions(options));
  return rebuild(dbPath, busyTimeout === undefined ? {} : { busyTimeout });
}

/** The busyTimeout of `options` (undefined, or `{ busyTimeout? }`); anything else is refused. */
function checkRecoverOptions(options: unknown): number | undefined {
  if (options === undefined) return undefined;
  const bad = (why: string, reason = 'options'): never => {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `rebuildWalIndex options must be { busyTimeout }: ${why}`, { reason });
  };
  if (options === null || typeof options !== 'object') return bad(`not ${options === null ? 'null' : typeof options}`);
  const key = unknownOptionName(options, ['busyTimeout']);
  if (key !== undefined) bad(`${JSON.stringify(key)} is not one of them`);
  const t = (options as Record<string, unknown>)['busyTimeout'];
  if (t !== undefined && (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0)) bad('busyTimeout must be a whole number of milliseconds >= 0', 'busyTimeout');
  return t as number | undefined;
}
