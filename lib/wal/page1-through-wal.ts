/**
 * wal/page1-through-wal.ts — the database header as SQLite reads it: through the WAL.
 *
 * SQLite opens a `-wal` that exists beside a non-empty database before it reads anything
 * (pager.c pagerOpenWalIfPresent), then reads page 1 through it (btree.c lockBtree): the newest
 * of the WAL's valid committed frames for page 1 (the recovery scan: magic, header checksum,
 * salts, the frames' checksum chain, through the last commit frame) IS page 1, and the header in
 * the database file is only what the next checkpoint overwrites. A torn write of page 1 during
 * an interrupted checkpoint (by walnut or by sqlite3) leaves the file's header damaged while the
 * database is whole; sqlite3 reads it, and so must walnut. Rules (dbHeaderThroughWal):
 *  - A 0-byte database file is SQLite's empty database: SQLite deletes a -wal beside it unread,
 *    so the WAL is not consulted (callers treat it as today).
 *  - No WAL, a WAL with an unusable header (SQLite counts it as empty) or without a committed
 *    page 1: the file's header decides, as before.
 *  - A valid WAL-mode file header is taken without reading the WAL (the page size and journal
 *    mode are all an open takes from it; page 1's other fields are read through the WAL once
 *    open), so an open of a healthy database costs nothing here. When the WAL's page size
 *    differs from that header's, the -wal is taken for another database's (a copied file: no
 *    torn write rewrites only the page-size field of an intact header) and callers refuse it
 *    (WALNUT_CORRUPT; verify's `wal-page-size`), where sqlite3 would adopt the WAL's page 1 and
 *    its next checkpoint would write pages of one size into a file of another.
 *  - Otherwise (the file header is garbage, short, names an invalid page size or is not in WAL
 *    mode) the WAL is scanned; when its committed frames hold page 1, that page decides. It
 *    counts as a header only when its magic is right and its page-size field is the WAL's page size (lockBtree
 *    would otherwise re-read the page at the other size, out of frames of a different size, and
 *    sqlite3 reports the database malformed): else `header` is null with `fromWal` true, and
 *    `otherPageSize` set for a header of another size (refuseWalPage1OfOtherSize: WALNUT_CORRUPT).
 * An intact header of another page size than the WAL's (in rollback mode: one in WAL mode returned
 * above) is not superseded either: `foreignWalPageSize` says so (refuseForeignWal).
 * Reads only, without locks (callers hold what they need); never throws for a missing or
 * unreadable WAL, which then simply does not supersede the file.
 *
 * Settled reads: the file's head and the WAL are two reads without a lock between them, and
 * another process may checkpoint meanwhile. A checkpoint that copies page 1 into the file and
 * then truncates or restarts the WAL between the two (sqlite3's wal_checkpoint(TRUNCATE) beside
 * an open of a database whose header an interrupted checkpoint tore) left a torn head beside an
 * empty or restarted WAL: a state no commit ever made, and open() failed WALNUT_CANTOPEN ("not a
 * SQLite database") where a retry opened. When the WAL is consulted, the head and the WAL's
 * header are read again after it; while either changed, everything is read again, at most
 * MAX_READS times, as SQLite's reader retries a snapshot that moved under it (wal.c
 * walTryBeginRead's WAL_RETRY, 100 tries). A header that stays damaged is refused as before.
 */
import * as fs from 'node:fs';

import { walnutError } from '../errors';
import { DB_HEADER_SIZE, decodeDbHeader, isWalMode, type DbHeader } from '../format/db-header';
import { decodeWalHeader, WAL_HEADER_SIZE } from '../format/wal-header';
import { WalnutFile } from '../io/file';
import { WalFile } from './wal-file';

export interface HeaderThroughWal {
  /** The header SQLite would use; null when it is not a SQLite database header. */
  header: DbHeader | null;
  /** True when page 1 came from the WAL (the file's own header is superseded). */
  fromWal: boolean;
  /** Set when page 1 in the WAL is a header naming another page size than the WAL's (`header` is then null). */
  otherPageSize?: { wal: number; page1: number };
  /**
   * Set when the file's header is intact (magic, a valid page size) but not in WAL mode and the
   * usable -wal beside it has another page size: a foreign -wal (refuseForeignWal), not page 1.
   */
  foreignWalPageSize?: number;
}

/**
 * `readHead`: reads the first bytes of the database file (up to 100; empty for a 0-byte file),
 * each time it is called (settled reads, above). `dbPath`: the database's real path (its WAL is
 * `${dbPath}-wal`).
 */
export function dbHeaderThroughWal(dbPath: string, readHead: () => Uint8Array): HeaderThroughWal {
  const walPath = `${dbPath}-wal`;
  let fileHead = Uint8Array.from(readHead());
  for (let reads = 1; ; reads++) {
    const fromFile = fileHead.length >= DB_HEADER_SIZE ? decodeDbHeader(fileHead) : null;
    if (fileHead.length === 0 || (fromFile !== null && fromFile.pageSize !== 0 && isWalMode(fromFile))) return { header: fromFile, fromWal: false }; // the WAL is not read (one of a foreign page size is refused by the caller, not adopted)
    const walHeader = walHeaderBytes(walPath);
    const through = throughWal(walPath, fromFile);
    const headAgain = Uint8Array.from(readHead());
    if ((Buffer.compare(headAgain, fileHead) === 0 && Buffer.compare(walHeaderBytes(walPath), walHeader) === 0) || reads >= MAX_READS) return through;
    fileHead = headAgain; // a checkpoint moved page 1 or the WAL meanwhile
  }
}

/** Reads of the file's head and WAL before dbHeaderThroughWal takes what they say as it is (SQLite's WAL_RETRY limit). */
const MAX_READS = 100;

/** What a file header that does not decide by itself (`fromFile`: null when it is not one) and the WAL say together. */
function throughWal(walPath: string, fromFile: DbHeader | null): HeaderThroughWal {
  const asFile = { header: fromFile, fromWal: false };
  const walPageSize = usableWalPageSize(walPath);
  if (walPageSize === null) return asFile;
  // an intact header (rollback mode, say) of another page size is no torn write: the -wal is another database's, never adopted
  if (fromFile !== null && fromFile.pageSize !== 0 && fromFile.pageSize !== walPageSize) return { ...asFile, foreignWalPageSize: walPageSize };
  const page1 = committedPage1(walPath);
  if (page1 === null) return asFile;
  const h = decodeDbHeader(page1);
  if (h !== null && h.pageSize !== page1.length) return { header: null, fromWal: true, otherPageSize: { wal: page1.length, page1: h.pageSize } };
  return { header: h, fromWal: true };
}

/**
 * The WAL's 32-byte header as on disk now (fewer bytes for a shorter file, none when it cannot be
 * read): a restart writes new salts there and a truncate empties it, so the same bytes before and
 * after a read of the WAL mean the read saw one generation.
 */
function walHeaderBytes(walPath: string): Uint8Array {
  let wal: WalnutFile;
  try {
    wal = WalnutFile.openSync(walPath, { readOnly: true, nonBlocking: true });
  } catch {
    return new Uint8Array(0);
  }
  try {
    const head = new Uint8Array(WAL_HEADER_SIZE);
    return head.subarray(0, fs.fstatSync(wal.fd).isFile() ? wal.readSync(head, 0, WAL_HEADER_SIZE, 0) : 0);
  } catch {
    return new Uint8Array(0);
  } finally {
    wal.closeSync();
  }
}

/**
 * WALNUT_CORRUPT (pgno 1) when page 1 in the WAL is a database header of another page size than
 * the WAL's frames: sqlite3 fails such a database with SQLITE_CORRUPT ("malformed"), where page 1
 * without the magic is SQLITE_NOTADB (callers' WALNUT_CANTOPEN "not a SQLite database").
 */
export function refuseWalPage1OfOtherSize(dbPath: string, through: HeaderThroughWal): void {
  const o = through.otherPageSize;
  if (o === undefined) return;
  throw walnutError('WALNUT_CORRUPT', `page 1 in the WAL of ${dbPath} says the page size is ${o.page1}, its frames are ${o.wal} bytes`, { path: dbPath, pgno: 1 });
}

/**
 * WALNUT_CORRUPT when the -wal beside an intact rollback-journal header is of another page size:
 * a copied foreign -wal. Before a conversion to WAL mode (which would leave the database changed
 * by a refused open) and before its frames could be checkpointed as this database's pages.
 */
export function refuseForeignWal(dbPath: string, through: HeaderThroughWal): void {
  if (through.foreignWalPageSize === undefined || through.header === null) return;
  throw walnutError('WALNUT_CORRUPT', `WAL page size ${through.foreignWalPageSize} differs from the database's ${through.header.pageSize}`, { path: `${dbPath}-wal` });
}

/**
 * The page size in the WAL's header when SQLite would use the WAL (else null). The WAL is looked
 * at only through a descriptor: opened without following a symbolic link (SQLite refuses one) and
 * without blocking (a FIFO is no WAL), never stat()ed by its path first.
 */
function usableWalPageSize(walPath: string): number | null {
  let wal: WalnutFile;
  try {
    wal = WalnutFile.openSync(walPath, { readOnly: true, nonBlocking: true });
  } catch {
    return null; // none (or not one SQLite could open): the file's header decides
  }
  try {
    if (!fs.fstatSync(wal.fd).isFile() || wal.sizeSync() <= WAL_HEADER_SIZE) return null; // SQLite: a WAL of only a header has no frames
    const head = new Uint8Array(WAL_HEADER_SIZE);
    if (wal.readSync(head, 0, WAL_HEADER_SIZE, 0) !== WAL_HEADER_SIZE) return null;
    const { status, header } = decodeWalHeader(head);
    return status === 'ok' ? header!.pageSize : null;
  } catch {
    return null;
  } finally {
    wal.closeSync(); // a walnut descriptor: closing it drops no lock this process holds elsewhere
  }
}

/** The newest committed frame of page 1 in the WAL (page-size bytes), or null when none. */
function committedPage1(walPath: string): Uint8Array | null {
  let wal: WalFile;
  try {
    wal = WalFile.openSync(walPath, { readOnly: true });
  } catch {
    return null;
  }
  try {
    const r = wal.recoverSync();
    for (let f = r.mxFrame; f >= 1; f--) {
      if (r.pgnos[f - 1] !== 1) continue;
      const page = new Uint8Array(r.pageSize);
      wal.readFramePageSync(f, page, r.pageSize);
      return page;
    }
    return null;
  } catch {
    return null;
  } finally {
    wal.closeSync();
  }
}
