/**
 * integrity/page-source.ts — the two views integrity checks read pages through:
 *
 * - FilePageSource: a database on disk as the next SQLite reader would see it, without taking a
 *   lock: the database file, overlaid with the newest frame of each page among the WAL's valid
 *   committed frames (frames 1..mxFrame of the recovery scan). The database size is the last
 *   commit frame's, else the header's when SQLite would trust it, else the file's size.
 * - SnapshotPageSource: a walnut Snapshot (a read transaction of an open store).
 *
 * A page read stays valid until the checker releases it (it holds the pages on its path down a
 * b-tree). The file source preads each page into a pooled buffer: memory already touched, so a
 * check makes no garbage and takes no page faults per page. (Reading the file in large blocks
 * was measured slower: b-tree walks jump around the file, index trees most of all.)
 */
import { walnutError } from '../errors';
import { trustedDbSize } from '../format/db-header';
import type { Snapshot } from '../wal-index/snapshot';
import { WalnutFile } from '../io/file';
import { dbHeaderThroughWal, refuseWalPage1OfOtherSize } from '../wal/page1-through-wal';
import { WalFile, type WalRecovery } from '../wal/wal-file';
import type { PageSource } from './btree-check';

const POOL_PAGES = 256;

export class FilePageSource implements PageSource {
  readonly pageSize: number;
  readonly dbSize: number;
  readonly storedPages: number;
  readonly walFrames: number;
  readonly #db: WalnutFile;
  readonly #wal: WalFile | null;
  readonly #ownsWal: boolean;
  readonly #frameOf: Map<number, number>;
  readonly #filePages: number;
  readonly #pool: Uint8Array[] = [];

  private constructor(db: WalnutFile, wal: WalFile | null, ownsWal: boolean, pageSize: number, dbSize: number, filePages: number, frameOf: Map<number, number>) {
    this.#db = db;
    this.#wal = wal;
    this.#ownsWal = ownsWal;
    this.pageSize = pageSize;
    this.dbSize = dbSize;
    this.#filePages = filePages;
    this.#frameOf = frameOf;
    let stored = filePages;
    for (const pgno of frameOf.keys()) if (pgno > stored) stored = pgno;
    this.storedPages = stored;
    this.walFrames = wal === null ? 0 : wal.mxFrame;
  }

  /**
   * `walView`: the database's WAL, already opened and recovered by the caller (who closes it);
   * without it the source opens and recovers the WAL itself.
   */
  static open(dbPath: string, walView?: { wal: WalFile; recovery: WalRecovery } | null): FilePageSource {
    const db = WalnutFile.openSync(dbPath, { readOnly: true });
    let wal: WalFile | null = walView?.wal ?? null;
    const ownsWal = walView === undefined;
    try {
      const head = new Uint8Array(100);
      const through = dbHeaderThroughWal(dbPath, () => head.subarray(0, db.readSync(head, 0, 100, 0))); // the WAL's page 1 supersedes a torn header
      refuseWalPage1OfOtherSize(dbPath, through);
      const h = through.header;
      if (h === null || h.pageSize === 0) throw walnutError('WALNUT_CANTOPEN', `${dbPath} is not a SQLite database`, { path: dbPath });
      const filePages = Math.floor(db.sizeSync() / h.pageSize);
      const frameOf = new Map<number, number>();
      let dbSize = trustedDbSize(h) ?? filePages;
      if (ownsWal) {
        try {
          wal = WalFile.openSync(`${dbPath}-wal`, { readOnly: true });
        } catch {
          wal = null; // no WAL: the database file alone
        }
      }
      if (wal !== null) {
        const r = walView?.recovery ?? wal.recoverSync();
        if (r.mxFrame > 0 && r.pageSize === h.pageSize) {
          for (let f = 1; f <= r.mxFrame; f++) frameOf.set(r.pgnos[f - 1]!, f);
          dbSize = r.dbSize;
        }
      }
      return new FilePageSource(db, wal, ownsWal, h.pageSize, dbSize, filePages, frameOf);
    } catch (e) {
      if (ownsWal) wal?.closeSync();
      db.closeSync();
      throw e;
    }
  }

  frameOf(pgno: number): number {
    return this.#frameOf.get(pgno) ?? 0;
  }

  read(pgno: number): Uint8Array {
    const out = this.#pool.pop() ?? new Uint8Array(this.pageSize);
    const frame = this.#frameOf.get(pgno);
    if (frame !== undefined) {
      this.#wal!.readFramePageSync(frame, out, this.pageSize);
      return out;
    }
    if (pgno > this.#filePages) return out.fill(0);
    out.fill(0, this.#db.readSync(out, 0, this.pageSize, (pgno - 1) * this.pageSize));
    return out;
  }

  release(page: Uint8Array): void {
    if (this.#pool.length < POOL_PAGES && page.length === this.pageSize) this.#pool.push(page);
  }

  close(): void {
    if (this.#ownsWal) this.#wal?.closeSync();
    this.#db.closeSync();
  }
}

export class SnapshotPageSource implements PageSource {
  readonly pageSize: number;
  readonly dbSize: number;
  readonly storedPages: number;
  readonly #snap: Snapshot;

  constructor(snap: Snapshot) {
    this.#snap = snap;
    this.pageSize = snap.pageSize;
    this.dbSize = snap.dbSize;
    this.storedPages = snap.dbSize;
  }

  frameOf(pgno: number): number {
    return this.#snap.frameOf(pgno);
  }

  read(pgno: number): Uint8Array {
    return this.#snap.readRawSync(pgno);
  }

  release(): void {
    // snapshot pages are fresh buffers: nothing to reuse
  }
}
