/**
 * integrity/inspect.ts — a read-only look at a database in WAL mode, whoever wrote it (or in
 * rollback-journal mode: its journal mode and whether its -journal is hot): the database
 * header, the WAL (recovery scan), the -shm header and checkpoint info (read as a file, not
 * mapped), the FEC sidecar's groups when there is one, and who holds which lock (asked with
 * F_OFD_GETLK, which takes no lock): SQLite's, walnut's close turn, and the name bytes that say
 * under which names walnut connections have the file open (wal-index/open-names.ts; found with a
 * few calls, not one per byte). Opens every file read-only and changes nothing. A 0-byte database file is SQLite's empty database
 * (pageSize 0, dbPages 0, journal mode 'rollback'), not a file of another kind.
 */
import { refuseExtraArguments } from '../arguments';
import * as fs from 'node:fs';

import { walnutError } from '../errors';
import { DB_LOCK, isWalMode, journalModeOf } from '../format/db-header';
import { CKPT_NBACKFILL, CKPT_NBACKFILL_ATTEMPTED, CKPT_READMARK, decodeShmHeaderCopies, SHM_INDEX_HEADER_BYTES, SHM_LOCK } from '../format/shm-header';
import { sameSalts } from '../format/wal-header';
import { noSuchFile, WalnutFile, type LockHolder } from '../io/file';
import { checkDbPath, refuseIrregularDatabase, requireRegularFiles } from '../io/real-path';
import { pendingRestores, type PendingRestore } from '../io/restore-asides';
import { dbHeaderThroughWal, refuseWalPage1OfOtherSize } from '../wal/page1-through-wal';
import { WalFile, type WalRecovery } from '../wal/wal-file';
import { hasHotJournal } from '../wal-index/journal-mode';
import { CLOSE_TURN_BYTE, heldNames } from '../wal-index/open-names';
import { scanSidecar } from '../fec/sidecar';
import { sidecarPathOf } from '../fec/writer';

export interface InspectReport {
  path: string;
  pageSize: number;
  walMode: boolean;
  /** 'wal', 'rollback' (open() converts it), or null: format versions SQLite cannot use. */
  journalMode: 'wal' | 'rollback' | null;
  /** `<db>-journal` is hot: an interrupted SQLite transaction the next SQLite connection rolls back. */
  hotJournal: boolean;
  dbFilePages: number;
  /** Database size in pages after the last valid commit (the file's size when the WAL is empty). */
  dbPages: number;
  walFrames: number;
  commits: number;
  walHeaderStatus: string;
  salts: [number, number];
  checkpointSeq: number;
  invalidTailBytes: number;
  walBytes: number;
  /**
   * The -shm's index header, read as a file. `bytes` is the file's size; one shorter than the
   * 136-byte index header holds no checkpoint info: backfilled and backfillAttempted are null,
   * readMarks empty (SQLite's next connection rebuilds it).
   */
  shm: null | { bytes: number; headerValid: boolean; mxFrame: number | null; nPage: number | null; backfilled: number | null; backfillAttempted: number | null; readMarks: number[] };
  backfilled: number | null;
  /** The FEC sidecar (`<db>-wal-fec`), when there is one: whole groups, and those of this WAL generation. */
  fecSidecar: null | { bytes: number; groups: number; currentGroups: number; protectedFrames: number; invalidTailBytes: number };
  /**
   * Who holds SQLite's locks (the -shm's WRITE .. DMS, the database's PENDING, RESERVED, SHARED)
   * and walnut's close turn (CLOSE_TURN: a walnut connection closing, which may delete the -wal
   * and -shm). `pid` names a classic POSIX lock's process (sqlite3's); null for an OFD lock
   * (walnut's), which belongs to an open file description: Linux names no process for it
   * (F_OFD_GETLK and /proc/locks say -1; /proc/PID/fdinfo/FD lists the descriptor's locks), and
   * for a process outside this pid namespace.
   */
  locks: { file: 'db' | 'shm'; lock: string; type: string; pid: number | null }[];
  /**
   * The database file's name bytes held (wal-index/open-names.ts), in byte order: each walnut
   * connection, in any process, holds the byte of the name it opened the file under (a hash of
   * its directory and base name). 'this name': connections have it open under the inspected
   * path; 'another name': under another (a hard link, or the file renamed since), and an open
   * under this path is refused (WALNUT_CANTOPEN, reason HardLink) while they do. One entry per
   * byte, however many connections hold it; `byte` is the offset in the file, `pid` as in locks.
   */
  openNames: { byte: number; length: number; under: 'this name' | 'another name'; type: string; pid: number | null }[];
  /**
   * Restores to this database that are not settled (a restore killed, or one running): what the
   * next walnut open or restore does with their files (io/restore-asides.ts pendingRestores).
   * While one whose temporary file is still there is listed, this report is of the old database
   * without the companions that went aside (its -wal, -shm, -journal, sidecar): the next open
   * puts them back. Read only: inspect and verify never settle.
   */
  restores: PendingRestore[];
}

/** A lock holder's process: null for an OFD lock, for which the kernel names none (pid -1), or a process outside this pid namespace (0). */
function pidOf(holder: LockHolder): number | null {
  return holder.pid > 0 ? holder.pid : null;
}

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * `open(path)`, or null when there is no such file. inspect takes no lock, so another
 * connection's last close (SQLite's or walnut's) may delete the -wal and -shm at any moment: a
 * file is looked at only through the descriptor this one open gives, never tested for or
 * stat()ed by its name first (an export three processes ran at once failed WALNUT_IO ENOENT
 * in 2 of 40 runs: the -shm was there for existsSync and gone for the stat after it).
 */
function openIfPresent<T>(path: string, open: (p: string) => T): T | null {
  try {
    return open(path);
  } catch (e) {
    if (noSuchFile(e)) return null;
    throw e;
  }
}

export function inspect(dbPath: string): InspectReport {
  if (arguments.length > 1) refuseExtraArguments('inspect', 'only a path', 1, arguments);
  return inspectWith(dbPath);
}

/**
 * The database and its -wal, -shm and -wal-fec must be regular files where they exist
 * (io/real-path.ts requireRegularFiles: inspect and verify hung on a FIFO); `real` is the
 * database's resolved path.
 */
export function refuseIrregularFiles(real: string): void {
  requireRegularFiles(real, [`${real}-wal`, `${real}-shm`, sidecarPathOf(`${real}-wal`)]);
}

/** inspect(), taking the WAL's recovery scan from a caller that already made it (verify). */
export function inspectWith(dbPath: string, walRecovery?: WalRecovery): InspectReport {
  checkDbPath(dbPath);
  let st: fs.Stats;
  try {
    st = fs.statSync(dbPath);
  } catch (e) {
    throw walnutError('WALNUT_CANTOPEN', `cannot open ${dbPath}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { path: dbPath });
  }
  if (st.isDirectory()) throw walnutError('WALNUT_CANTOPEN', `${dbPath} is a directory, not a database`, { path: dbPath, reason: 'NotRegularFile' }); // (the reason a FIFO or device there gets)
  refuseIrregularDatabase(dbPath, st); // (a pipe named through /dev/stdin: before realpath, which gives no real name for it)
  // /proc/self/fd/N of a file deleted while open names "<path> (deleted)", which is not there
  // (nor is a file removed since the stat): realpath's raw ENOENT escaped, not a WalnutError
  let real: string;
  try {
    real = fs.realpathSync(dbPath);
  } catch (e) {
    throw walnutError('WALNUT_CANTOPEN', `cannot open ${dbPath}: ${noSuchFile(e) ? 'the file it names is gone (deleted)' : (e as Error).message}`, { path: dbPath, errno: Math.abs((e as NodeJS.ErrnoException).errno ?? 0) || undefined, cause: e });
  }
  refuseIrregularFiles(real);
  const db = WalnutFile.openSync(real, { readOnly: true });
  try {
    const head = new Uint8Array(100);
    let got = 0;
    const through = dbHeaderThroughWal(real, () => head.subarray(0, (got = db.readSync(head, 0, 100, 0)))); // a torn header superseded by the WAL's page 1 is no refusal
    // a 0-byte file is SQLite's empty database (no header yet: page size 0 here, its journal mode
    // SQLite's default; SQLite deletes a -wal beside it unread, so it has no pages from one)
    const empty = got === 0;
    refuseWalPage1OfOtherSize(real, through);
    const h = through.header;
    if (!empty && (h === null || h.pageSize === 0)) throw walnutError('WALNUT_CANTOPEN', `${dbPath} is not a SQLite database`, { path: dbPath });
    const dbFilePages = h === null ? 0 : Math.floor(st.size / h.pageSize);
    const report: InspectReport = {
      path: real,
      pageSize: h?.pageSize ?? 0,
      walMode: h !== null && isWalMode(h),
      journalMode: h === null ? 'rollback' : journalModeOf(h),
      hotJournal: hasHotJournal(db, `${real}-journal`),
      dbFilePages,
      dbPages: dbFilePages,
      walFrames: 0,
      commits: 0,
      walHeaderStatus: 'missing',
      salts: [0, 0],
      checkpointSeq: 0,
      invalidTailBytes: 0,
      walBytes: 0,
      shm: null,
      backfilled: null,
      fecSidecar: null,
      locks: [],
      openNames: [],
      restores: pendingRestores(real),
    };
    const wal = walRecovery === undefined ? openIfPresent(`${real}-wal`, (p) => WalFile.openSync(p, { readOnly: true })) : null;
    if (walRecovery !== undefined || wal !== null) {
      try {
        const r = walRecovery ?? wal!.recoverSync();
        Object.assign(report, {
          walFrames: r.mxFrame,
          commits: r.commits,
          walHeaderStatus: r.headerStatus,
          salts: r.salts,
          checkpointSeq: r.checkpointSeq,
          invalidTailBytes: r.invalidTailBytes,
          walBytes: r.fileSize,
          dbPages: r.mxFrame > 0 && !empty ? r.dbSize : dbFilePages,
        });
      } finally {
        wal?.closeSync();
      }
    }
    const side = openIfPresent(`${real}-wal-fec`, (p) => WalnutFile.openSync(p, { readOnly: true }));
    if (side !== null) {
      try {
        const s = scanSidecar(side);
        const current = s.groups.filter((g) => sameSalts(g.salts, report.salts));
        report.fecSidecar = { bytes: s.fileSize, groups: s.groups.length, currentGroups: current.length, protectedFrames: current.reduce((n, g) => n + g.k, 0), invalidTailBytes: s.invalidTailBytes };
      } finally {
        side.closeSync();
      }
    }
    // one descriptor for the header, the size and the lock holders (never fs: its close would
    // drop SQLite's locks in this process)
    const shm = openIfPresent(`${real}-shm`, (p) => WalnutFile.openSync(p, { readOnly: true }));
    if (shm !== null) {
      try {
        const size = shm.sizeSync();
        const head = new Uint8Array(Math.min(size, SHM_INDEX_HEADER_BYTES));
        const bytes = head.subarray(0, shm.readSync(head, 0, head.length, 0));
        if (bytes.length >= SHM_INDEX_HEADER_BYTES) {
          const hdr = decodeShmHeaderCopies(bytes.subarray(0, 96));
          const dv = new DataView(bytes.buffer, bytes.byteOffset, SHM_INDEX_HEADER_BYTES);
          const u32 = (off: number) => dv.getUint32(off, HOST_LE);
          report.shm = {
            bytes: size,
            headerValid: hdr !== null,
            mxFrame: hdr?.mxFrame ?? null,
            nPage: hdr?.nPage ?? null,
            backfilled: u32(CKPT_NBACKFILL),
            backfillAttempted: u32(CKPT_NBACKFILL_ATTEMPTED),
            readMarks: [0, 1, 2, 3, 4].map((i) => u32(CKPT_READMARK(i))),
          };
          report.backfilled = report.shm.backfilled;
        } else {
          // shorter than the index header: no checkpoint info to report (it said backfilled 0,
          // backfillAttempted 0, as if a -shm had said so)
          report.shm = { bytes: size, headerValid: false, mxFrame: null, nPage: null, backfilled: null, backfillAttempted: null, readMarks: [] };
        }
        const names: [string, number][] = [['WRITE', SHM_LOCK.WRITE], ['CKPT', SHM_LOCK.CKPT], ['RECOVER', SHM_LOCK.RECOVER], ['READ0', SHM_LOCK.READ(0)], ['READ1', SHM_LOCK.READ(1)], ['READ2', SHM_LOCK.READ(2)], ['READ3', SHM_LOCK.READ(3)], ['READ4', SHM_LOCK.READ(4)], ['DMS', SHM_LOCK.DMS]];
        for (const [name, byte] of names) {
          const holder = shm.lockHolder(byte, 1, 'exclusive');
          if (holder) report.locks.push({ file: 'shm', lock: name, type: holder.type, pid: pidOf(holder) });
        }
      } finally {
        shm.closeSync();
      }
    }
    for (const [name, start, len] of [['PENDING', DB_LOCK.PENDING, 1], ['RESERVED', DB_LOCK.RESERVED, 1], ['SHARED', DB_LOCK.SHARED_FIRST, DB_LOCK.SHARED_SIZE], ['CLOSE_TURN', CLOSE_TURN_BYTE, 1]] as const) {
      const holder = db.lockHolder(start, len, 'exclusive');
      if (holder) report.locks.push({ file: 'db', lock: name, type: holder.type, pid: pidOf(holder) });
    }
    for (const held of heldNames(db, real)) {
      report.openNames.push({ byte: held.byte, length: held.length, under: held.thisName ? 'this name' : 'another name', type: held.holder.type, pid: pidOf(held.holder) });
    }
    return report;
  } finally {
    db.closeSync();
  }
}
