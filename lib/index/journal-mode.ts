/**
 * index/journal-mode.ts — bringing a rollback-journal database into WAL mode the way SQLite's
 * `PRAGMA journal_mode=WAL` does (btree.c sqlite3BtreeSetVersion and the pager's commit of
 * page 1), and the hot-journal rule that guards every open (pager.c hasHotJournal).
 *
 * Hot journal: `<db>-journal` exists, nobody holds RESERVED on the database file (so no
 * rollback-mode writer is using it), it is not empty and its first byte is not zero (a commit
 * in DELETE/TRUNCATE/PERSIST mode deletes, truncates or zeroes the header). The database file
 * is then in the middle of a transaction that the next SQLite connection rolls back, whichever
 * mode the header says; walnut refuses such a database (WALNUT_CANTOPEN, reason HotJournal)
 * rather than build a WAL on pages the rollback would later overwrite. A symbolic link at
 * `<db>-journal` is never read through (SQLite opens the journal with O_NOFOLLOW and cannot open
 * such a database): the open is refused with reason Symlink.
 *
 * Conversion, starting from this connection's SHARED lock (or its EXCLUSIVE in locking mode
 * 'exclusive'), with the busy timeout at each step (DB_LOCK in format/db-header.ts):
 *   RESERVED            waits out a rollback-mode writer or another converter (without our
 *                       SHARED meanwhile, which it needs gone to finish); then the hot-journal
 *                       check again and the header read again: done if it now says WAL
 *   PENDING, SHARED     exclusive: EXCLUSIVE; new readers are held off, current ones waited
 *                       out (WALNUT_BUSY after the timeout, nothing written)
 *   header              the new 100 bytes (walModeHeader) in one pwrite, then fsync
 *   back                to the lock the connection started with
 *
 * Invariants:
 *  - Only header fields change (18, 19, 24, 92 and, when it was not trusted, 28), never page
 *    contents, all in the first 100 bytes (one sector). A crash leaves either header or any
 *    mix of the two: each is a database SQLite opens with the same contents (in rollback mode
 *    unless byte 19 reached 2; a mismatch of 24 and 92 only makes SQLite size the database by
 *    its file, which holds exactly the pages the header says whenever SQLite last wrote it).
 *  - SQLite connections that were open before see the change: a rollback-mode connection
 *    checks the change counter (24) at the start of every transaction, drops its cache when it
 *    moved, re-reads page 1 and opens the WAL because byte 19 is 2.
 *  - A leftover empty or zeroed journal (TRUNCATE/PERSIST mode) is not hot and stays, as
 *    SQLite leaves it.
 */
import * as fs from 'node:fs';

import { walnutError } from '../errors';
import { DB_HEADER_SIZE, DB_LOCK, decodeDbHeader, journalModeOf, trustedDbSize, walModeHeader, type DbHeader } from '../format/db-header';
import type { WalnutFile } from '../io/file';

/** pager.c hasHotJournal, asked while holding SHARED (or more) on the database file. */
export function hasHotJournal(db: WalnutFile, journalPath: string): boolean {
  let size: number;
  try {
    size = fs.statSync(journalPath).size;
  } catch {
    return false; // no journal
  }
  if (db.lockHolder(DB_LOCK.RESERVED, 1, 'exclusive') !== null) return false; // a writer owns it
  if (size === 0) return false;
  let fd: number;
  try {
    fd = fs.openSync(journalPath, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW); // never read through a link
  } catch {
    return true; // SQLite too assumes hot when it cannot look (ticket #3883)
  }
  try {
    const first = new Uint8Array(1);
    return fs.readSync(fd, first, 0, 1, 0) === 1 && first[0] !== 0;
  } finally {
    fs.closeSync(fd);
  }
}

/** WALNUT_CANTOPEN (reason HotJournal) when the database has a hot rollback journal; reason Symlink when a link sits there. */
export function refuseHotJournal(db: WalnutFile, dbPath: string): void {
  const journalPath = `${dbPath}-journal`;
  if (fs.lstatSync(journalPath, { throwIfNoEntry: false })?.isSymbolicLink()) {
    // SQLite opens its journal with O_NOFOLLOW and cannot open the database either (SQLITE_CANTOPEN)
    throw walnutError('WALNUT_CANTOPEN', `${journalPath} is a symbolic link (walnut does not follow a symbolic link at a file it opens)`, { path: journalPath, reason: 'Symlink' });
  }
  if (!hasHotJournal(db, journalPath)) return;
  throw walnutError(
    'WALNUT_CANTOPEN',
    `${journalPath} is a hot rollback journal: a SQLite transaction on this database was interrupted and must be rolled back first; open the database once with sqlite3 (e.g. sqlite3 ${dbPath} 'PRAGMA schema_version') and then open it again`,
    { path: dbPath, reason: 'HotJournal' },
  );
}

export interface ConvertOptions {
  /** The lock this connection holds now and gets back: SHARED ('shared') or EXCLUSIVE. */
  lockingMode: 'shared' | 'exclusive';
  busyTimeout: number;
}

/** SHARED on the database file as SQLite takes it: PENDING read-locked while the range is. */
export async function lockShared(db: WalnutFile, busyTimeout: number): Promise<void> {
  await db.lock(DB_LOCK.PENDING, 1, 'shared', busyTimeout);
  try {
    await db.lock(DB_LOCK.SHARED_FIRST, DB_LOCK.SHARED_SIZE, 'shared', busyTimeout);
  } finally {
    db.unlock(DB_LOCK.PENDING, 1);
  }
}

/**
 * Converts the rollback-journal database open on `db` to WAL mode (see the top of this file).
 * Returns the header as it is now (another connection may have converted it meanwhile).
 */
export async function convertToWalMode(db: WalnutFile, dbPath: string, o: ConvertOptions): Promise<DbHeader> {
  const { PENDING, RESERVED, SHARED_FIRST, SHARED_SIZE } = DB_LOCK;
  await lockReserved(db, o);
  try {
    // with RESERVED nobody else writes: the journal and the header stay as read here
    refuseHotJournal(db, dbPath); // a writer may have died while we waited
    const { h, head } = await readHeader(db, dbPath);
    const mode = journalModeOf(h);
    if (mode === 'wal') return h; // converted by the connection we waited for
    if (mode === null) {
      throw walnutError('WALNUT_CANTOPEN', `unsupported file format versions ${h.writeVersion}/${h.readVersion} (bytes 18/19; SQLite knows 1 and 2)`, { path: dbPath, reason: 'UnsupportedFileFormat' });
    }
    const filePages = Math.ceil((await db.size()) / h.pageSize); // pager.c pagerPagecount rounds up
    const trusted = trustedDbSize(h);
    if (trusted !== null && trusted > filePages) {
      // lockBtree's SQLITE_CORRUPT: the header claims pages the file does not have
      throw walnutError('WALNUT_CORRUPT', `the database header says ${trusted} pages but the file holds ${filePages}`, { path: dbPath, pgno: 1 });
    }
    await db.lock(PENDING, 1, 'exclusive', o.busyTimeout);
    try {
      await db.lock(SHARED_FIRST, SHARED_SIZE, 'exclusive', o.busyTimeout);
      try {
        const next = walModeHeader(head, filePages);
        await db.writev([next], 0, 'full');
        return decodeDbHeader(next)!;
      } finally {
        if (o.lockingMode === 'shared') db.tryLock(SHARED_FIRST, SHARED_SIZE, 'shared'); // an atomic downgrade of our own lock
      }
    } finally {
      if (o.lockingMode === 'shared') db.unlock(PENDING, 1);
    }
  } finally {
    db.unlock(RESERVED, 1);
  }
}

/**
 * RESERVED, waiting with the busy timeout. While another connection holds it, this one waits
 * without its SHARED lock: that writer (or converter) needs EXCLUSIVE to finish, and two
 * connections each holding what the other waits for would both stall until a busy timeout
 * (SQLite fails one of them with SQLITE_BUSY at once instead).
 */
async function lockReserved(db: WalnutFile, o: ConvertOptions): Promise<void> {
  if (db.tryLock(DB_LOCK.RESERVED, 1, 'exclusive')) return;
  if (o.lockingMode === 'shared') db.unlock(DB_LOCK.SHARED_FIRST, DB_LOCK.SHARED_SIZE);
  await db.lock(DB_LOCK.RESERVED, 1, 'exclusive', o.busyTimeout);
  if (o.lockingMode === 'exclusive') return;
  try {
    await lockShared(db, o.busyTimeout);
  } catch (e) {
    db.unlock(DB_LOCK.RESERVED, 1);
    throw e;
  }
}

async function readHeader(db: WalnutFile, dbPath: string): Promise<{ h: DbHeader; head: Uint8Array }> {
  const head = new Uint8Array(DB_HEADER_SIZE);
  const h = (await db.read(head, 0, DB_HEADER_SIZE, 0)) === DB_HEADER_SIZE ? decodeDbHeader(head) : null;
  if (h === null || h.pageSize === 0) throw walnutError('WALNUT_CANTOPEN', 'not a SQLite database', { path: dbPath });
  return { h, head };
}
