/**
 * commit/page-arena.ts — PageArena: walnut's own copies of the pages callers commit.
 *
 * store.commit() and store.sequence() without `release` copy each page here when they are
 * called (Transaction.write() copies into a buffer of its own), so a caller may change, reuse or
 * transfer its buffer as soon as the call returns, as with better-sqlite3. Every frame the
 * append writes, its checksum, and every read of a commit still in flight then come from
 * walnut's copy, which no caller ever sees. (Without it a page changed while its batch was on
 * the I/O thread, between the frame's checksum and the pwritev, made a frame that fails its
 * checksum: recovery, SQLite's too, ends the WAL there and loses every later acknowledged commit
 * of every caller; a page whose buffer was transferred and collected mid-append was read after
 * it was freed; one transferred before its batch formed failed the whole batch and broke the
 * commit chain of every caller.)
 *
 * The copies go into slabs that are reused: a fresh 4 KiB buffer per page cost ~2.3 µs of CPU
 * (allocation, first-touch page faults, the GC of external memory), a copy into a reused slab
 * ~0.2 µs (bench/README.md, "pages copied at commit()"). Invariants:
 *  - a commit's copies lie in one slab, in page views that the slab keeps and hands out again
 *    once it is reused (a commit that does not fit in what is left of the slab being filled
 *    starts the next one); a commit larger than a slab gets one buffer of its own, left to the
 *    GC;
 *  - a slab counts the commits it holds whose PageCopies were not released; it is reused only
 *    when that count is 0: at once when it is the slab being filled (a lone committer copies
 *    into the same cache-warm bytes every time), else it goes to the spares (at most
 *    SPARE_BYTES of them; more are left to the GC);
 *  - PageCopies.release() is called once nothing reads the pages any more: by the group
 *    committer when the commit settles (its append has completed by then, written or failed),
 *    or for a sequenced commit by the sequencer once no snapshot reads its overlay either (its
 *    `release` hook). A second release, or one of copies whose slab was reused since (a bug),
 *    changes nothing; copies never released keep their slab from reuse, never from the GC.
 */
import type { WalPage } from '../wal/wal-file';

/** Slab size: enough for 64 one-page commits of 4 KiB (64 committers' batch), at least 16 pages. */
const SLAB_BYTES = 256 * 1024;
const MIN_SLAB_PAGES = 16;
/** Spare slabs kept for reuse, in bytes: a burst of large commits does not allocate again at once. */
const SPARE_BYTES = 4 << 20;

class Slab {
  readonly #buffer: ArrayBuffer;
  readonly #views: Uint8Array[];
  readonly #pageSize: number;
  /** The next free page slot. */
  next = 0;
  /** Commits holding copies here, not released yet. */
  live = 0;
  /** Bumped at every reuse: copies of an earlier use never release the new one's. */
  use = 0;

  constructor(readonly pages: number, pageSize: number) {
    this.#buffer = new ArrayBuffer(pages * pageSize);
    this.#views = new Array<Uint8Array>(pages);
    this.#pageSize = pageSize;
  }

  view(slot: number): Uint8Array {
    return (this.#views[slot] ??= new Uint8Array(this.#buffer, slot * this.#pageSize, this.#pageSize));
  }

  reset(): void {
    this.next = 0;
    this.use++;
  }
}

/** One commit's copies in a slab: release() once nothing reads them (file comment). */
export class PageCopies {
  #slab: Slab | null;
  readonly #use: number;
  readonly #arena: PageArena;

  constructor(arena: PageArena, slab: Slab) {
    this.#arena = arena;
    this.#slab = slab;
    this.#use = slab.use;
  }

  release(): void {
    const slab = this.#slab;
    if (slab === null) return;
    this.#slab = null;
    if (slab.use === this.#use) this.#arena.released(slab);
  }
}

export class PageArena {
  readonly #pageSize: number;
  readonly #slabPages: number;
  readonly #spareSlabs: number;
  #current: Slab | null = null;
  readonly #spare: Slab[] = [];

  constructor(pageSize: number) {
    this.#pageSize = pageSize;
    this.#slabPages = Math.max(MIN_SLAB_PAGES, Math.floor(SLAB_BYTES / pageSize));
    this.#spareSlabs = Math.max(1, Math.floor(SPARE_BYTES / (this.#slabPages * pageSize)));
  }

  /**
   * Replaces each page's `data` with a copy of it that walnut owns (the WalPage objects must be
   * the caller's own: normalizePages makes new ones). Returns the copies to release, or null when
   * they went into a buffer of their own (a large commit: nothing to release).
   */
  copy(pages: WalPage[]): PageCopies | null {
    const n = pages.length;
    if (n > this.#slabPages) {
      const size = this.#pageSize;
      const own = new ArrayBuffer(n * size);
      for (let i = 0; i < n; i++) {
        const view = new Uint8Array(own, i * size, size);
        view.set(pages[i]!.data);
        pages[i]!.data = view;
      }
      return null;
    }
    let slab = this.#current;
    if (slab === null || slab.next + n > slab.pages) slab = this.#nextSlab(slab);
    for (let i = 0; i < n; i++) {
      const view = slab.view(slab.next++);
      view.set(pages[i]!.data);
      pages[i]!.data = view;
    }
    slab.live++;
    return new PageCopies(this, slab);
  }

  /** @internal PageCopies.release(): one commit of `slab` let go of its copies. */
  released(slab: Slab): void {
    if (--slab.live > 0) return;
    slab.reset();
    if (slab !== this.#current && this.#spare.length < this.#spareSlabs) this.#spare.push(slab);
  }

  /** The slab being filled is full: the next one (the full one stays with its copies until they are released). */
  #nextSlab(full: Slab | null): Slab {
    if (full !== null && full.live === 0) {
      full.reset();
      return full;
    }
    const slab = this.#spare.pop() ?? new Slab(this.#slabPages, this.#pageSize);
    this.#current = slab;
    return slab;
  }
}
