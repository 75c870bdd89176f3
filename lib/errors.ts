/**
 * errors.ts — WalnutError and its stable codes (DESIGN.md section 4).
 *
 * Every failure walnut reports, thrown or rejected, from TypeScript or from the native addon,
 * is a WalnutError: the addon constructs errors with this class (registered in native.ts), so
 * `instanceof WalnutError` holds across the boundary. `code` is stable and is what callers
 * branch on; the message is for people.
 */

export const ErrorCodes = [
  'WALNUT_IO',
  'WALNUT_FULL',
  'WALNUT_CORRUPT',
  'WALNUT_BUSY',
  'WALNUT_CONFLICT',
  'WALNUT_INVALID_ARGUMENT',
  'WALNUT_CLOSED',
  'WALNUT_READONLY',
  'WALNUT_CANTOPEN',
  'WALNUT_INVALID_FRAMING',
  'WALNUT_FAILED',
  'WALNUT_SQL',
] as const;

export type WalnutErrorCode = (typeof ErrorCodes)[number];

/** `reason` values of WALNUT_INVALID_FRAMING (export streams). */
export type FramingReason =
  | 'HeaderMissing'
  | 'UnsupportedStreamVersion'
  | 'ZeroLength'
  | 'LengthExceedsMax'
  | 'Truncated'
  | 'UnknownRecordKind'
  | 'ChecksumChainBroken';

export interface WalnutErrorDetails {
  code: WalnutErrorCode;
  /** OS error number for WALNUT_IO / WALNUT_FULL / WALNUT_BUSY raised by a system call. */
  errno?: number;
  /** The system call that failed. */
  syscall?: string;
  /** The file concerned. */
  path?: string;
  /** Machine-readable detail, e.g. a FramingReason or the name of an invalid option. */
  reason?: string;
  /** The page at fault (WALNUT_CORRUPT from a page check). */
  pgno?: number;
  /** SQLite's (extended) result code, for errors of walnut/sql (WALNUT_SQL, WALNUT_CONFLICT, ...). */
  sqliteCode?: number;
  cause?: unknown;
}

export class WalnutError extends Error {
  code: WalnutErrorCode;
  errno?: number;
  syscall?: string;
  path?: string;
  reason?: string;
  pgno?: number;
  sqliteCode?: number;

  constructor(message: string, details: WalnutErrorDetails) {
    // `new WalnutError('m')` (no details, so no code) threw a raw TypeError ("reading 'cause'")
    if (details === null || typeof details !== 'object') throw new WalnutError(`WALNUT_INVALID_ARGUMENT: new WalnutError(message, { code, ... }) needs its details, not ${details === null ? 'null' : typeof details}`, { code: 'WALNUT_INVALID_ARGUMENT', reason: 'details' });
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'WalnutError';
    this.code = details.code;
    if (details.errno !== undefined) this.errno = details.errno;
    if (details.syscall !== undefined) this.syscall = details.syscall;
    if (details.pgno !== undefined) this.pgno = details.pgno;
    if (details.sqliteCode !== undefined) this.sqliteCode = details.sqliteCode;
    if (details.path !== undefined) this.path = details.path;
    if (details.reason !== undefined) this.reason = details.reason;
  }
}

/** Shorthand used across the library: `throw walnutError('WALNUT_CORRUPT', 'bad header', {path})`. */
export function walnutError(
  code: WalnutErrorCode,
  message: string,
  extra: Omit<WalnutErrorDetails, 'code'> = {},
): WalnutError {
  return new WalnutError(`${code}: ${message}`, { code, ...extra });
}

/** `message` without the `WALNUT_<CODE>: ` walnutError() puts before it (an error's text told inside another's). */
export function withoutCode(message: string): string {
  return message.replace(/^WALNUT_[A-Z_]+: /, '');
}

export function isWalnutError(value: unknown, code?: WalnutErrorCode): value is WalnutError {
  return value instanceof WalnutError && (code === undefined || value.code === code);
}

/**
 * A commit refused before anything was queued (the store closed or stopped, its chain broken):
 * a promise rejected with `e` on a later turn of the event loop (setImmediate), not among this
 * turn's microtasks. A caller that retries at once (`await` it, catch, commit again) without
 * resumeCommits() otherwise never left the microtask queue: its own timers and I/O never ran
 * (test/unit/commit-refused-later-turn).
 */
export function refusedOnLaterTurn<T>(e: unknown): Promise<T> {
  return new Promise<T>((_, reject) => void setImmediate(reject, e));
}

/**
 * Marks the error of a WAL append whose frames could not be invalidated after it failed
 * (WalFile.invalidateFrom): reason 'OutcomeUnknown', so that whoever reports the failure can say
 * the commits may yet appear after a reopen. An error that already has a reason keeps it.
 */
export function markOutcomeUnknown(e: unknown): void {
  if (e === null || typeof e !== 'object') return;
  const err = e as { reason?: string; message?: string };
  if (err.reason !== undefined) return;
  err.reason = 'OutcomeUnknown';
  if (typeof err.message === 'string') err.message += '; the frames written could not be invalidated either, so whether these commits appear after a reopen is unknown';
}

/**
 * What the commits of the batch in flight learn when the store fails (WALNUT_FAILED `failed`,
 * which every later call gets as it is): `failed` itself when their frames were invalidated
 * (the commits are not in the database, also after a reopen), else a WALNUT_FAILED of its own
 * with reason 'OutcomeUnknown' (`cause` was marked so: they may appear after a reopen).
 */
export function failureInFlight(failed: WalnutError, cause: unknown): WalnutError {
  if ((cause as { reason?: unknown } | null)?.reason !== 'OutcomeUnknown') return failed;
  return new WalnutError(`${failed.message}; whether these commits appear after the reopen is unknown (their frames could not be invalidated)`, { code: 'WALNUT_FAILED', path: failed.path, errno: failed.errno, reason: 'OutcomeUnknown', cause });
}

/**
 * Did an operation fail because the disk (or a quota) is full? WalnutFile says WALNUT_FULL, a
 * Node stream or fs call ENOSPC or EDQUOT: the caller then reports WALNUT_FULL, as a commit or
 * restore does (an export's sink, the CLI's last line).
 */
export function diskFull(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'WALNUT_FULL' || code === 'ENOSPC' || code === 'EDQUOT';
}
