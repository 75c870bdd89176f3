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
 * rather than build a WAL on pages the rollback would later overwrite. A journal that is not a
 * regular file (a directory, a FIFO) counts as hot: SQLite cannot open the database either.
 * A symbolic link at `<db>-journal` is never read through (SQLite opens the journal with
 * O_NOFOLLOW and cannot open such a database): the open is refused with reason Symlink.
 *
 * Conversion, starting from this connection's SHARED lock (or its EXCLUSIVE in locking mode
 * 'exclusive'), with the busy timeout at each step (DB_LOCK in format/db-header.ts):
 *   (first)             the -wal (and -shm) must be writable or creatable, else WALNUT_READONLY
 *                       with nothing changed (requireWalFilesWritable)
 *   RESERVED            waits out a rollback-mode writer or another converter (without our
 *                       SHARED meanwhile, which it needs gone to finish); then the hot-journal
 *                       check again and the header read again: done if it now says WAL
 *   PENDING, SHARED     exclusive: EXCLUSIVE; new readers are held off, current ones waited
 *                       out (WALNUT_BUSY after the timeout, nothing written)
 *   header              the new 100 bytes (walModeHeader) in one pwrite, then fsync
 *   back                to the lock the connection started with
 * An empty database file is an empty database to SQLite (better-sqlite3 and python's sqlite3
 * create one before the first table); PRAGMA journal_mode=WAL writes its page 1 in WAL mode.
 * walnut does the same with the caller's page 1 (newPage1), under the same locks, after
 * deleting any -wal beside it as SQLite does (a WAL cannot belong to an empty database).
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
import * as path from 'node:path';

import { walnutError } from '../errors';
import { DB_HEADER_SIZE, DB_LOCK, decodeDbHeader, journalModeOf, trustedDbSize, walModeHeader, type DbHeader } from '../format/db-header';
import type { WalnutFile } from '../io/file';

/**
 * pager.c hasHotJournal, asked while holding SHARED (or more) on the database file. SQLite's
 * xAccess(EXISTS) counts an empty regular file as absent but anything else (a directory, a
 * FIFO) as present; SQLite then fails on it (disk I/O error reading a directory), so walnut
 * treats such a journal as hot too, without opening it (opening a FIFO would block).
 */
export function hasHotJournal(db: WalnutFile, journalPath: string): boolean {
  let st: fs.Stats;
  try {
    st = fs.statSync(journalPath);
  } catch {
    return false; // no journal
  }
  if (st.isFile() && st.size === 0) return false;
  if (db.lockHolder(DB_LOCK.RESERVED, 1, 'exclusive') !== null) return false; // a writer owns it
  if (!st.isFile()) return true;
  let fd: number;
  try {
    fd = fs.openSync(journalPath, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW); // never read through a link
  } catch (e) {
    // Gone since the look above: its writer rolled back (or committed) and dropped RESERVED in
    // between; SQLite calls that hot too but finds it gone under EXCLUSIVE before any playback.
    // Any other failure: SQLite too assumes hot when it cannot look (ticket #3883).
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
  try {
    const first = new Uint8Array(1);
    return fs.readSync(fd, first, 0, 1, 0) === 1 && first[0] !== 0;
  } catch {
    return true; // as when it cannot be opened
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
  throw walnutError('WALNUT_CANTOPEN', hotJournalProblem(dbPath), { path: dbPath, reason: 'HotJournal' });
}

/** What is wrong with the hot `<db>-journal` and what to do (open()'s refusal, verify's finding). */
export function hotJournalProblem(dbPath: string): string {
  const journalPath = `${dbPath}-journal`;
  if (fs.statSync(journalPath, { throwIfNoEntry: false })?.isFile() === false) {
    return `${journalPath} is not a regular file: SQLite cannot use this database either while it is there (a directory fails with a disk I/O error, a FIFO blocks); remove it and open the database again`;
  }
  return `${journalPath} is a hot rollback journal: a SQLite transaction on this database was interrupted and must be rolled back first; open the database once with sqlite3 (e.g. sqlite3 ${dbPath} 'PRAGMA schema_version') and then open it again`;
}

/**
 * WALNUT_READONLY unless the -wal (and, in shared locking mode, the -shm) can be opened for
 * writing or created beside the database. SQLite's own conversion writes page 1 through a
 * rollback journal, so where it cannot create files it fails before changing anything; walnut
 * writes the header in place and must ask first, or it would leave a database in WAL mode
 * that nobody allowed to write there can open.
 */
function requireWalFilesWritable(dbPath: string, lockingMode: 'shared' | 'exclusive'): void {
  for (const file of lockingMode === 'shared' ? [`${dbPath}-wal`, `${dbPath}-shm`] : [`${dbPath}-wal`]) {
    const target = fs.existsSync(file) ? file : path.dirname(file);
    try {
      fs.accessSync(target, fs.constants.W_OK);
    } catch (e) {
      const errno = -((e as { errno?: number }).errno ?? 0) || undefined;
      throw walnutError('WALNUT_READONLY', `cannot convert ${dbPath} to WAL mode: ${target === file ? `${file} is not writable` : `${file} cannot be created (the directory is not writable)`}; the database is left in rollback-journal mode`, { path: file, errno, syscall: 'access', cause: e });
    }
  }
}

export interface ConvertOptions {
  /** The lock this connection holds now and gets back: SHARED ('shared') or EXCLUSIVE. */
  lockingMode: 'shared' | 'exclusive';
  busyTimeout: number;
  /**
   * Page 1 of a new WAL-mode database, for an empty file: SQLite takes an empty file for an
   * empty database, and PRAGMA journal_mode=WAL writes its page 1. Without it, an empty file
   * is not a database.
   */
  newPage1?: () => Uint8Array;
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
 * EXCLUSIVE on the database file without waiting, as SQLite's last connection takes it before it
 * removes the -wal and -shm: PENDING, then the SHARED range (our own SHARED converts only when
 * nobody else holds part of it). False, PENDING let go again, when another connection is there.
 */
export function tryExclusive(db: WalnutFile): boolean {
  if (!db.tryLock(DB_LOCK.PENDING, 1, 'exclusive')) return false;
  if (db.tryLock(DB_LOCK.SHARED_FIRST, DB_LOCK.SHARED_SIZE, 'exclusive')) return true;
  db.unlock(DB_LOCK.PENDING, 1);
  return false;
}

/**
 * Converts the rollback-journal database open on `db` to WAL mode (see the top of this file),
 * or writes `o.newPage1` into an empty file. Returns the header as it is now (another
 * connection may have converted it meanwhile).
 */
export async function convertToWalMode(db: WalnutFile, dbPath: string, o: ConvertOptions): Promise<DbHeader> {
  requireWalFilesWritable(dbPath, o.lockingMode);
  await lockReserved(db, o);
  try {
    // with RESERVED nobody else writes: the journal and the header stay as read here
    refuseHotJournal(db, dbPath); // a writer may have died while we waited
    if ((await db.size()) === 0 && o.newPage1 !== undefined) {
      // Nobody can be using a WAL of an empty database: SQLite deletes such a -wal when it opens
      // one (pagerOpenWalIfPresent); here it goes under EXCLUSIVE, with nobody attached.
      return await writeExclusively(db, o, o.newPage1(), () => fs.rmSync(`${dbPath}-wal`, { force: true }));
    }
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
    return await writeExclusively(db, o, walModeHeader(head, filePages));
  } finally {
    db.unlock(DB_LOCK.RESERVED, 1);
  }
}

/**
 * Under RESERVED: takes EXCLUSIVE (PENDING, then the SHARED range), runs `first`, writes
 * `bytes` at offset 0 and syncs, then returns to the connection's lock. Returns the new header.
 */
async function writeExclusively(db: WalnutFile, o: ConvertOptions, bytes: Uint8Array, first?: () => void): Promise<DbHeader> {
  const { PENDING, SHARED_FIRST, SHARED_SIZE } = DB_LOCK;
  await db.lock(PENDING, 1, 'exclusive', o.busyTimeout);
  try {
    await db.lock(SHARED_FIRST, SHARED_SIZE, 'exclusive', o.busyTimeout);
    try {
      first?.();
      await db.writev([bytes], 0, 'full');
      return decodeDbHeader(bytes)!;
    } finally {
      if (o.lockingMode === 'shared') db.tryLock(SHARED_FIRST, SHARED_SIZE, 'shared'); // an atomic downgrade of our own lock
    }
  } finally {
    if (o.lockingMode === 'shared') db.unlock(PENDING, 1);
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
