/**
 * export/page-writer.ts — PageWriter: a restore's page writes, in large sequential runs; and
 * startWriteback(), the hint both the restore and a file export sink give the kernel.
 *
 * Invariants:
 *  - The file ends up as if every write and truncation had been applied at once, in call order:
 *    a later write of a page replaces an earlier one still pending, and a truncation drops the
 *    pending pages beyond it (a page written, truncated away and grown back reads as zeros).
 *  - Pending pages go out when WRITE_BATCH_BYTES are pending and at finish(): sorted by page
 *    number, one pwritev per run of adjacent pages, straight from the caller's buffers (no
 *    copy: WalnutFile.writevLent; the caller lends them, unchanged and attached, until
 *    release() says they are done: restore's own read slots, or its copies of the records
 *    of a caller's buffer or stream, restore.ts). Before them the file is cut to the lowest size a
 *    truncation asked for since the last batch, after them to the latest size.
 *  - Writeback starts every HINT_BYTES written and at finish() (sync_file_range), so the
 *    caller's one fsync at the end finds the pages already on their way to the disk. Nothing
 *    here makes anything durable.
 *  - All of it runs on the file's I/O lane, in order; a write waits while more than
 *    MAX_BATCHES_IN_FLIGHT batches are queued (release() sends one past the limit). A failed
 *    write fails the next call (and finish(), and release()'s promise).
 *  - release() tells the caller when it may reuse the buffers it gave so far (restore's file
 *    reader, framing.ts fromFile): once every write queued until then has completed.
 */
import { FRAME_HEADER_SIZE } from '../format/frame-header';
import { nativeHandleOf, type WalnutFile } from '../io/file';
import { nativeExportIo } from '../native';

/** Bytes of pending pages that start a batch (small enough that its pages are still in the CPU cache). */
export const WRITE_BATCH_BYTES = 2 << 20;
/** Writes smaller than this get no writeback hint (a syscall of its own for little gain). */
export const WRITEBACK_BYTES = 1 << 20;
/** The restore hints once per this many bytes written. */
const HINT_BYTES = 8 << 20;
const MAX_BATCHES_IN_FLIGHT = 4;

/**
 * Asks the kernel to start writing [offset, offset + length) of `file` back to the disk now (a
 * hint, queued on the file's lane after the writes before it; its failure changes nothing).
 */
export function startWriteback(file: WalnutFile, offset: number, length: number): void {
  try {
    nativeExportIo.startWriteback(nativeHandleOf(file), offset, length).catch(() => undefined);
  } catch {
    // the file was closed meanwhile: nothing left to hint
  }
}

/** `pages` (a whole number of pages) for page numbers first, first + 1, ... */
interface Extent {
  first: number;
  pages: Uint8Array;
}

export class PageWriter {
  readonly #file: WalnutFile;
  readonly #pageSize: number;
  #pending: Extent[] = [];
  #pendingBytes = 0;
  /** The lowest size (pages) a truncation asked for since the last batch; null: none. */
  #lowest: number | null = null;
  /** The file's size (pages) once everything so far is applied; null: not known (no truncation yet). */
  #size: number | null = null;
  #inFlight: Promise<void>[] = [];
  /** The byte range written since the last writeback hint. */
  #unhinted = { start: Infinity, end: 0 };

  constructor(file: WalnutFile, pageSize: number) {
    this.#file = file;
    this.#pageSize = pageSize;
  }

  /** Pages firstPgno, firstPgno + 1, ... from `pages` (a whole number of pages). */
  async write(firstPgno: number, pages: Uint8Array): Promise<void> {
    this.#pending.push({ first: firstPgno, pages });
    if (this.#size !== null) this.#size = Math.max(this.#size, firstPgno - 1 + pages.length / this.#pageSize);
    this.#pendingBytes += pages.length;
    if (this.#pendingBytes >= WRITE_BATCH_BYTES) await this.#flush();
  }

  /** The pages of WAL frames (24-byte header, then the page; pgno in the header's first 4 bytes). */
  async writeFrames(frames: readonly Uint8Array[]): Promise<void> {
    for (const f of frames) await this.write(new DataView(f.buffer, f.byteOffset, 4).getUint32(0), f.subarray(FRAME_HEADER_SIZE));
  }

  /** The database is `dbSize` pages from here on. */
  truncate(dbSize: number): void {
    const ps = this.#pageSize;
    this.#pending = this.#pending.flatMap((e) => {
      const keep = Math.min(e.pages.length / ps, dbSize - e.first + 1);
      if (keep <= 0) return [];
      return keep * ps === e.pages.length ? [e] : [{ first: e.first, pages: e.pages.subarray(0, keep * ps) }];
    });
    this.#lowest = Math.min(this.#lowest ?? dbSize, dbSize);
    this.#size = dbSize;
  }

  /**
   * The page as the writes so far leave it (the last pending write of it, else the file once
   * every write has completed; zeros past the end): a PAGE_DELTA's previous version.
   */
  async readPage(pgno: number): Promise<Uint8Array> {
    const ps = this.#pageSize;
    for (let i = this.#pending.length - 1; i >= 0; i--) {
      const e = this.#pending[i]!;
      if (pgno >= e.first && (pgno - e.first) * ps < e.pages.length) return e.pages.subarray((pgno - e.first) * ps, (pgno - e.first + 1) * ps);
    }
    await this.release();
    const out = new Uint8Array(ps);
    if (this.#size !== null && pgno > this.#size) return out;
    await this.#file.readLent(out, 0, ps, (pgno - 1) * ps); // its own, until returned
    return out;
  }

  /** Writes what is pending and waits for every write. */
  async finish(): Promise<void> {
    await this.#flush();
    this.#hint(Infinity, 0, true);
    while (this.#inFlight.length > 0) await this.#inFlight.shift();
  }

  /** Adds [start, end) to the range written since the last hint; hints when it is large (or `now`). */
  #hint(start: number, end: number, now: boolean): void {
    const u = this.#unhinted;
    u.start = Math.min(u.start, start);
    u.end = Math.max(u.end, end);
    if (u.end - u.start >= (now ? WRITEBACK_BYTES : HINT_BYTES)) {
      startWriteback(this.#file, u.start, u.end - u.start);
      this.#unhinted = { start: Infinity, end: 0 };
    }
  }

  /**
   * Sends what is pending now and returns a promise that settles once every write so far has
   * completed (from then on no write refers to the buffers given so far); its failure also
   * fails finish().
   */
  release(): Promise<void> {
    this.#send();
    const all = Promise.all(this.#inFlight).then(() => undefined);
    all.catch(() => undefined); // awaited by the caller or finish(); never unhandled
    return all;
  }

  async #flush(): Promise<void> {
    this.#send();
    while (this.#inFlight.length > MAX_BATCHES_IN_FLIGHT) await this.#inFlight.shift();
  }

  /** Queues what is pending as one batch of writes. */
  #send(): void {
    const ps = this.#pageSize;
    const runs = pageRuns(this.#pending, ps);
    const lowest = this.#lowest;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#lowest = null;
    if (runs.length === 0 && lowest === null) return;
    const file = this.#file;
    const ops: Promise<unknown>[] = [];
    if (lowest !== null) ops.push(file.truncate(lowest * ps));
    let start = Infinity;
    let end = 0;
    for (const run of runs) {
      const at = (run.first - 1) * ps;
      ops.push(file.writevLent(run.buffers, at)); // lent until release() (header comment)
      start = Math.min(start, at);
      end = Math.max(end, at + run.bytes);
    }
    if (lowest !== null && this.#size !== lowest) ops.push(file.truncate(this.#size! * ps));
    this.#hint(start, end, false);
    const batch = Promise.all(ops).then(() => undefined);
    batch.catch(() => undefined); // awaited below or by finish(); never unhandled
    this.#inFlight.push(batch);
  }
}

interface Run {
  first: number;
  buffers: Uint8Array[];
  bytes: number;
}

/**
 * Runs of adjacent pages, in page order, the last write of a page winning. Extents already in
 * ascending, non-overlapping order (a base image) are joined as they are; others go page by page.
 */
function pageRuns(extents: Extent[], ps: number): Run[] {
  let ordered = true;
  for (let i = 1; i < extents.length && ordered; i++) {
    const prev = extents[i - 1]!;
    ordered = extents[i]!.first >= prev.first + prev.pages.length / ps;
  }
  const pieces: Extent[] = ordered ? extents : latestPages(extents, ps);
  const runs: Run[] = [];
  for (const e of pieces) {
    const last = runs[runs.length - 1];
    if (last !== undefined && last.first + last.bytes / ps === e.first) {
      last.buffers.push(e.pages);
      last.bytes += e.pages.length;
    } else {
      runs.push({ first: e.first, buffers: [e.pages], bytes: e.pages.length });
    }
  }
  return runs;
}

/** One extent per page, the latest write of each, sorted by page number. */
function latestPages(extents: Extent[], ps: number): Extent[] {
  const latest = new Map<number, Uint8Array>();
  for (const e of extents) {
    for (let i = 0; i * ps < e.pages.length; i++) latest.set(e.first + i, e.pages.subarray(i * ps, (i + 1) * ps));
  }
  return [...latest.keys()].sort((a, b) => a - b).map((first) => ({ first, pages: latest.get(first)! }));
}
