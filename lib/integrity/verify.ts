/**
 * integrity/verify.ts — integrity checks, level 1 (this version): the database header (magic, page
 * size, WAL mode), the WAL (header and checksum chain, torn or invalid tail), and the -shm
 * against the WAL (a valid -shm header must not describe more frames than the WAL holds or
 * other salts). Levels 2..5 (b-tree structure, overflow chains, cross-references, schema) are
 * not in this version and are refused rather than faked.
 */
import { walnutError } from '../errors';
import { inspect } from './inspect';

export interface VerifyIssue {
  kind: string;
  pgno?: number;
  frame?: number;
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  level: number;
  issues: VerifyIssue[];
}

export function verify(dbPath: string, level: number): VerifyReport {
  if (!Number.isInteger(level) || level < 1 || level > 5) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', '--level must be 1, 2, 3, 4 or 5', { reason: 'level' });
  }
  if (level > 1) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `level ${level} checks (b-trees and beyond) are not available in this version; level 1 is`, { reason: 'level' });
  }
  const r = inspect(dbPath);
  const issues: VerifyIssue[] = [];
  if (!r.walMode) issues.push({ kind: 'not-wal-mode', pgno: 1, message: 'the database header says rollback-journal mode (bytes 18/19 are not 2)' });
  if (r.walHeaderStatus !== 'ok' && r.walHeaderStatus !== 'missing' && r.walHeaderStatus !== 'empty' && r.walBytes > 0) {
    issues.push({ kind: 'wal-header', message: `the WAL header is unusable (${r.walHeaderStatus}); SQLite treats the WAL as empty` });
  }
  if (r.invalidTailBytes > 0 && r.walHeaderStatus === 'ok') {
    issues.push({ kind: 'wal-tail', frame: r.walFrames + 1, message: `${r.invalidTailBytes} bytes after the last valid commit (frame ${r.walFrames}) are not part of the database (a torn or uncommitted tail, or preallocated space)` });
  }
  if (r.shm && r.shm.headerValid && r.shm.mxFrame !== null && r.shm.mxFrame > r.walFrames) {
    issues.push({ kind: 'shm-ahead-of-wal', frame: r.shm.mxFrame, message: `the -shm describes ${r.shm.mxFrame} frames but the WAL holds ${r.walFrames} valid ones` });
  }
  if (r.shm && r.backfilled !== null && r.shm.mxFrame !== null && r.backfilled > r.shm.mxFrame) {
    issues.push({ kind: 'shm-backfill', message: `nBackfill ${r.backfilled} is beyond mxFrame ${r.shm.mxFrame}` });
  }
  if (r.dbFilePages * r.pageSize === 0) issues.push({ kind: 'empty-database', pgno: 1, message: 'the database file is empty' });
  // a tail of preallocated zeros is normal for walnut's WALs: only report a non-zero invalid tail
  const hard = issues.filter((i) => i.kind !== 'wal-tail');
  return { ok: hard.length === 0, level, issues };
}
