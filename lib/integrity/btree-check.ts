/**
 * integrity/btree-check.ts — integrity levels 1..5 over the pages of a SQLite database, read
 * through a PageSource (the file plus the WAL's newest committed frames, or a walnut snapshot).
 *
 * What each level checks (each includes the ones below; SQLite's file format, "B-tree Pages",
 * "Cell Payload Overflow Pages", "The Freelist", "Pointer Map or Ptrmap Pages"):
 *   1 the database header (magic, page size, usable size >= 480, payload fractions 64/32/32,
 *     page count within the stored pages, the in-header page count where SQLite trusts it);
 *     every reachable b-tree page's header: type 2/5/10/13,
 *     cell count and pointer array within the page, every cell pointer in
 *     [content area, usable - 4], the freeblock chain as btreeComputeFreeSpace() requires
 *     (ascending, at least 4 bytes apart, inside the page), free space accounting; the 16-byte
 *     XXH3-128 trailer of every page when the database has one (wal/page-trailer.ts).
 *   2 b-tree structure: every cell parses inside the page, cells and freeblocks never share a
 *     byte and the bytes between them equal the header's fragmented count, child pointers in
 *     1..N and of the tree's kind, all leaves at one depth, rowids strictly increasing within
 *     and across pages (bounds passed down from the dividers), index keys non-decreasing in the
 *     order the schema gives them (collations BINARY/NOCASE/RTRIM, ASC/DESC; key-order.ts), a
 *     page reached twice in one tree.
 *   3 payloads: overflow chains (pages in 1..N, followed to their 0 terminator, exactly as many
 *     pages as the payload needs, no page twice) and record framing (recordFramingOk).
 *   4 cross-reference: every page 1..N owned exactly once by a b-tree, an overflow chain, the
 *     freelist or a pointer-map page (the lock-byte page at offset 2^30 excepted, as in SQLite);
 *     freelist trunk leaf counts and the header's freelist count; with auto-vacuum every
 *     pointer-map entry and the header's largest root page.
 *   5 schema: sqlite_schema rows decode, types are table/index/view/trigger, each sql is a CREATE
 *     statement of its type, root pages are present exactly where they must be and of the right
 *     kind (rowid table, WITHOUT ROWID table or index), every index names an existing table.
 *
 * Bounded: every page is visited at most once per role (an ownership array stops cycles), tree
 * depth is capped at MAX_DEPTH, chains at N pages, findings at maxFindings.
 */
import { lockBytePage } from '../format/db-header';
import { be32 } from '../format/frame-header';
import { checkPageTrailer, PAGE_TRAILER_RESERVED } from '../wal/page-trailer';
import { type ColumnOrder, indexKeyOrder } from './key-order';
import { compareRecordKeys, decodeRecord, decodeText, type Key, type RecordKey, serialTypeBytes, type Value, VarintReader } from './record';

export interface Finding {
  level: number;
  kind: string;
  pgno?: number;
  frame?: number;
  message: string;
}

export interface PageSource {
  readonly pageSize: number;
  /** Database size in pages as this view sees it (header or WAL commit frame). */
  readonly dbSize: number;
  /** Highest page number the file or the WAL actually holds. */
  readonly storedPages: number;
  /** The page (pageSize bytes; zeros where nothing is stored), valid until release(). */
  read(pgno: number): Uint8Array;
  /** The checker is done with a page read(); its memory may be reused. */
  release(page: Uint8Array): void;
  /** The WAL frame the page comes from, 0 for the database file. */
  frameOf(pgno: number): number;
}

export interface CheckOptions {
  level: number;
  maxFindings?: number;
  /** Check page trailers: default when the header's reserved-space byte is 16. */
  pageChecksums?: boolean;
}

const MAX_DEPTH = 40;
const PTRMAP_ROOTPAGE = 1;
const PTRMAP_FREEPAGE = 2;
const PTRMAP_OVERFLOW1 = 3;
const PTRMAP_OVERFLOW2 = 4;
const PTRMAP_BTREE = 5;
const OWNER_FREELIST = -1;
const OWNER_PTRMAP = -2;
const OWNER_PENDING = -3;
const FIRST_CHAIN_ID = -10;

interface SchemaRow {
  type: string;
  name: string;
  tblName: string;
  rootpage: number;
  sql: string | null;
  pgno: number;
}

interface Tree {
  root: number;
  intKey: boolean;
  label: string;
  /** How index keys are ordered; null: not known for certain (not checked). */
  keyOrder: ColumnOrder[] | null;
  leafDepth: number;
  /** Collects the leaf payloads (sqlite_schema only). */
  rows?: { payload: Uint8Array | null; pgno: number }[];
}

interface PageHeader {
  type: number;
  hdr: number;
  intKey: boolean;
  leaf: boolean;
  nCell: number;
  ptrs: number;
  content: number;
  firstFree: number;
  frag: number;
  right: number;
}

interface Cell {
  start: number;
  size: number;
  /** The rowid, or the index record when it lies wholly in the page (undefined when it spills). */
  key: Key | RecordKey | undefined;
  child: number;
  payloadSize: number;
  local: number;
  payloadAt: number;
  overflow: number;
}

class StopChecking extends Error {}

export function checkDatabase(src: PageSource, options: CheckOptions): Finding[] {
  const c = new Checker(src, options);
  try {
    c.run();
  } catch (e) {
    if (!(e instanceof StopChecking)) throw e;
  }
  return c.findings;
}

class Checker {
  readonly findings: Finding[] = [];
  readonly #src: PageSource;
  readonly #level: number;
  readonly #max: number;
  readonly #trailers: boolean | undefined;
  #n = 0;
  #usable = 0;
  #encoding = 1;
  #owner = new Int32Array(0);
  #expType = new Uint8Array(0);
  #expParent = new Uint32Array(0);
  #chainId = FIRST_CHAIN_ID;
  readonly #varint = new VarintReader();
  #spans = new Uint32Array(0);

  constructor(src: PageSource, options: CheckOptions) {
    this.#src = src;
    this.#level = options.level;
    this.#max = options.maxFindings ?? 1000;
    this.#trailers = options.pageChecksums;
  }

  #report(level: number, kind: string, pgno: number | undefined, message: string): void {
    if (level > this.#level) return;
    const f: Finding = { level, kind, message };
    if (pgno !== undefined && pgno > 0) {
      f.pgno = pgno;
      const frame = pgno <= this.#src.storedPages ? this.#src.frameOf(pgno) : 0;
      if (frame > 0) f.frame = frame;
    }
    this.findings.push(f);
    if (this.findings.length >= this.#max) throw new StopChecking();
  }

  /**
   * Page 1's in-header database size (offset 28), which SQLite trusts when it is valid (not 0,
   * and the version-valid-for number at 92 equals the change counter at 24; lockBtree): larger
   * than the database, SQLite reports it malformed; smaller, SQLite sees only that many pages
   * and its next commit drops the rest (a commit that grew the database without page 1).
   */
  #checkInHeaderSize(page1: Uint8Array, n: number): void {
    const dv = new DataView(page1.buffer, page1.byteOffset, 100);
    const inHeader = dv.getUint32(28);
    if (inHeader === 0 || dv.getUint32(92) !== dv.getUint32(24) || inHeader === n) return;
    const effect = inHeader > n ? 'SQLite reports the database malformed' : `SQLite reads only ${inHeader} and its next commit drops pages ${inHeader + 1}..${n} (a commit grew the database without rewriting page 1)`;
    this.#report(1, 'header-page-count', 1, `page 1 says the database has ${inHeader} pages but it has ${n}: ${effect}`);
  }

  run(): void {
    const src = this.#src;
    const page1 = src.read(1);
    if (!this.#checkHeader(page1)) return;
    const n = src.dbSize;
    this.#n = Math.min(n, src.storedPages);
    if (n > src.storedPages) {
      this.#report(1, 'page-count', 1, `the database has ${n} pages but only ${src.storedPages} are stored (file and WAL); pages ${src.storedPages + 1}..${n} are missing`);
    }
    this.#checkInHeaderSize(page1, n);
    if (this.#n < 1) return;
    this.#owner = new Int32Array(this.#n + 1);
    this.#expType = new Uint8Array(this.#n + 1);
    this.#expParent = new Uint32Array(this.#n + 1);
    const dv = new DataView(page1.buffer, page1.byteOffset, 100);
    const autoVacuum = dv.getUint32(52) !== 0;
    if (autoVacuum) this.#claimPointerMaps();
    const pending = this.#pendingBytePage();
    if (pending <= this.#n) this.#owner[pending] = OWNER_PENDING;

    const schema: Tree = { root: 1, intKey: true, label: 'sqlite_schema', keyOrder: [], leafDepth: -1, rows: [] };
    this.#claim(1, 1, PTRMAP_ROOTPAGE, 0, 2, schema.label);
    this.#walk(1, schema, 0, undefined, undefined, page1);
    const rows = this.#decodeSchema(schema.rows!);

    let maxRoot = 1;
    for (const row of rows) {
      if (row.rootpage <= 0) continue;
      if (row.rootpage > this.#n) {
        this.#report(2, 'root-page', row.rootpage, `${row.type} ${row.name}: root page ${row.rootpage} is outside the database (1..${this.#n})`);
        continue;
      }
      maxRoot = Math.max(maxRoot, row.rootpage);
      const label = `${row.type} ${row.name}`;
      if (!this.#claim(row.rootpage, row.rootpage, PTRMAP_ROOTPAGE, 0, 2, label)) continue;
      const data = src.read(row.rootpage);
      const intKey = data[0] === 0x05 || data[0] === 0x0d;
      const tree: Tree = { root: row.rootpage, intKey, label, keyOrder: indexKeyOrder(row, rows, this.#encoding), leafDepth: -1 };
      try {
        this.#walk(row.rootpage, tree, 0, undefined, undefined, data);
      } finally {
        src.release(data);
      }
    }
    if (this.#level >= 4) {
      this.#checkFreelist(dv.getUint32(32), dv.getUint32(36));
      if (autoVacuum) {
        const largest = dv.getUint32(52);
        if (largest !== maxRoot) this.#report(4, 'largest-root', 1, `the header's largest root page is ${largest} but the largest root in sqlite_schema is ${maxRoot}`);
        this.#checkPointerMaps();
      }
      for (let p = 1; p <= this.#n; p++) {
        if (this.#owner[p] === 0) this.#report(4, 'unused-page', p, `page ${p} is never used (not in any b-tree, overflow chain, the freelist or a pointer map)`);
      }
    }
    if (this.#level >= 5) this.#checkSchema(rows);
    if (this.#trailers ?? page1[20] === PAGE_TRAILER_RESERVED) {
      for (let p = 1; p <= this.#n; p++) {
        const page = p === 1 ? page1 : src.read(p);
        const status = checkPageTrailer(page);
        if (p !== 1) src.release(page);
        if (status === 'mismatch') this.#report(1, 'page-checksum', p, `page ${p}: the XXH3-128 trailer does not match the page (damage, or a page a writer other than walnut rewrote)`);
      }
    }
  }

  #checkHeader(page1: Uint8Array): boolean {
    const magic = 'SQLite format 3\0';
    for (let i = 0; i < 16; i++) {
      if (page1[i] !== magic.charCodeAt(i)) {
        this.#report(1, 'db-header', 1, 'page 1 does not start with "SQLite format 3\\0"');
        return false;
      }
    }
    const raw = (page1[16]! << 8) | page1[17]!;
    const pageSize = raw === 1 ? 65536 : raw;
    if (pageSize !== this.#src.pageSize) {
      this.#report(1, 'db-header', 1, `the header's page size ${raw} is not the page size ${this.#src.pageSize} in use`);
      return false;
    }
    this.#usable = pageSize - page1[20]!;
    if (this.#usable < 480) {
      this.#report(1, 'db-header', 1, `usable page size ${this.#usable} (page size ${pageSize} - ${page1[20]} reserved) is below 480`);
      return false;
    }
    if (page1[21] !== 64 || page1[22] !== 32 || page1[23] !== 32) {
      this.#report(1, 'db-header', 1, `payload fractions are ${page1[21]}/${page1[22]}/${page1[23]}, not 64/32/32`);
    }
    const enc = new DataView(page1.buffer, page1.byteOffset, 100).getUint32(56);
    if (enc > 3) this.#report(1, 'db-header', 1, `text encoding ${enc} is not 1, 2 or 3`);
    this.#encoding = enc === 0 ? 1 : enc;
    return true;
  }

  #describe(owner: number): string {
    if (owner > 0) return `the b-tree rooted at page ${owner}`;
    if (owner === OWNER_FREELIST) return 'the freelist';
    if (owner === OWNER_PTRMAP) return 'the pointer map';
    if (owner === OWNER_PENDING) return 'the lock-byte page (never used by SQLite)';
    return 'an overflow chain';
  }

  /**
   * Marks `pgno` as owned by `who`; false (with a finding) when it is out of range or already
   * owned. Reaching a page twice from the same structure is a cycle, reported at that structure's
   * level; two structures sharing a page is a cross-reference error (level 4).
   */
  #claim(pgno: number, who: number, ptrType: number, parent: number, level: number, what: string): boolean {
    if (pgno < 1 || pgno > this.#n) {
      this.#report(level, 'page-range', parent || undefined, `${what}: page ${pgno} is outside the database (1..${this.#n})`);
      return false;
    }
    const prev = this.#owner[pgno]!;
    if (prev !== 0) {
      if (prev === who) this.#report(level, 'cycle', pgno, `${what}: page ${pgno} is reached twice (a cycle)`);
      else this.#report(4, 'shared-page', pgno, `page ${pgno} is used by ${this.#describe(prev)} and by ${what}`);
      return false;
    }
    this.#owner[pgno] = who;
    this.#expType[pgno] = ptrType;
    this.#expParent[pgno] = parent;
    return true;
  }

  #parseHeader(data: Uint8Array, pgno: number): PageHeader | null {
    const hdr = pgno === 1 ? 100 : 0;
    const type = data[hdr]!;
    if (type !== 0x02 && type !== 0x05 && type !== 0x0a && type !== 0x0d) {
      this.#report(1, 'page-type', pgno, `page ${pgno}: ${type} is not a b-tree page type (2, 5, 10 or 13)`);
      return null;
    }
    const leaf = type >= 0x0a;
    const u16 = (o: number) => (data[hdr + o]! << 8) | data[hdr + o + 1]!;
    const h: PageHeader = {
      type,
      hdr,
      intKey: type === 0x05 || type === 0x0d,
      leaf,
      nCell: u16(3),
      ptrs: hdr + (leaf ? 8 : 12),
      content: u16(5) === 0 ? 65536 : u16(5),
      firstFree: u16(1),
      frag: data[hdr + 7]!,
      right: leaf ? 0 : be32(data, hdr + 8),
    };
    const usable = this.#usable;
    const cellFirst = h.ptrs + 2 * h.nCell;
    if (cellFirst > usable) {
      this.#report(1, 'page-header', pgno, `page ${pgno}: ${h.nCell} cell pointers do not fit in the page`);
      return null;
    }
    if (h.content > usable || h.content < cellFirst) {
      this.#report(1, 'page-header', pgno, `page ${pgno}: cell content area starts at ${h.content}, outside ${cellFirst}..${usable}`);
      return null;
    }
    // the freeblock chain, as btreeComputeFreeSpace() requires it
    let free = h.frag + h.content;
    let pc = h.firstFree;
    if (pc > 0) {
      if (pc < h.content) {
        this.#report(1, 'freeblock', pgno, `page ${pgno}: first freeblock ${pc} is before the cell content area (${h.content})`);
        return null;
      }
      let next = 0;
      let size = 0;
      for (;;) {
        if (pc > usable - 4) {
          this.#report(1, 'freeblock', pgno, `page ${pgno}: freeblock at ${pc} is past the end of the page`);
          return null;
        }
        next = (data[pc]! << 8) | data[pc + 1]!;
        size = (data[pc + 2]! << 8) | data[pc + 3]!;
        free += size;
        if (next <= pc + size + 3) break;
        pc = next;
      }
      if (next > 0) {
        this.#report(1, 'freeblock', pgno, `page ${pgno}: freeblocks out of order or overlapping at ${pc}`);
        return null;
      }
      if (pc + size > usable) {
        this.#report(1, 'freeblock', pgno, `page ${pgno}: the last freeblock (${pc}, ${size} bytes) extends past the page`);
        return null;
      }
    }
    if (free > usable || free < cellFirst) {
      this.#report(1, 'free-space', pgno, `page ${pgno}: free space accounting is inconsistent (${free - cellFirst} bytes)`);
      return null;
    }
    for (let i = 0; i < h.nCell; i++) {
      const at = h.ptrs + 2 * i;
      const cp = (data[at]! << 8) | data[at + 1]!;
      if (cp < h.content || cp > usable - 4) {
        this.#report(1, 'cell-pointer', pgno, `page ${pgno}: cell ${i} at offset ${cp} is outside ${h.content}..${usable - 4}`);
        return null;
      }
    }
    return h;
  }

  #localPayload(payload: number, intKey: boolean): number {
    const u = this.#usable;
    const maxLocal = intKey ? u - 35 : Math.floor(((u - 12) * 64) / 255) - 23;
    if (payload <= maxLocal) return payload;
    const minLocal = Math.floor(((u - 12) * 32) / 255) - 23;
    const surplus = minLocal + ((payload - minLocal) % (u - 4));
    return surplus <= maxLocal ? surplus : minLocal;
  }

  /** Parses cell `i`; null (with a finding at level 2) when it does not fit the page. */
  #parseCell(data: Uint8Array, pgno: number, h: PageHeader, i: number): Cell | null {
    const at = h.ptrs + 2 * i;
    const start = (data[at]! << 8) | data[at + 1]!;
    const end = this.#usable;
    const bad = (why: string): null => {
      this.#report(2, 'cell', pgno, `page ${pgno}: cell ${i} at offset ${start} ${why}`);
      return null;
    };
    const v = this.#varint;
    let p = start;
    let child = 0;
    if (!h.leaf) {
      child = be32(data, p);
      p += 4;
    }
    if (h.intKey && !h.leaf) {
      if (!v.read(data, p, end)) return bad('runs past the end of the page');
      return { start, size: v.next - start, key: v.value, child, payloadSize: 0, local: 0, payloadAt: 0, overflow: 0 };
    }
    if (!v.readSize(data, p, end)) return bad('has an unreadable payload size');
    const payloadSize = v.value as number;
    p = v.next;
    let key: Key | RecordKey | undefined;
    if (h.intKey) {
      if (!v.read(data, p, end)) return bad('runs past the end of the page');
      key = v.value;
      p = v.next;
    }
    const local = this.#localPayload(payloadSize, h.intKey);
    const spills = local < payloadSize;
    let size = p - start + local + (spills ? 4 : 0);
    if (size < 4) size = 4;
    if (start + size > end) return bad(`(${size} bytes) extends past the end of the page`);
    const overflow = spills ? be32(data, p + local) : 0;
    if (!h.intKey && !spills) key = { data, start: p, end: p + local };
    return { start, size, key, child, payloadSize, local, payloadAt: p, overflow };
  }

  /**
   * Checks the page and its subtree. Keys of the subtree must lie in (lo, hi] for rowid trees
   * and in [lo, hi] for index trees (undefined: unbounded or unknown).
   */
  #walk(pgno: number, tree: Tree, depth: number, lo: Key | RecordKey | undefined, hi: Key | RecordKey | undefined, given?: Uint8Array): void {
    const data = given ?? this.#src.read(pgno);
    try {
      this.#walkPage(data, pgno, tree, depth, lo, hi);
    } finally {
      // the page's keys bound its children's walks, which are over by now
      if (given === undefined) this.#src.release(data);
    }
  }

  #walkPage(data: Uint8Array, pgno: number, tree: Tree, depth: number, lo: Key | RecordKey | undefined, hi: Key | RecordKey | undefined): void {
    const h = this.#parseHeader(data, pgno);
    if (h === null) return;
    if (h.intKey !== tree.intKey) {
      this.#report(2, 'page-type', pgno, `page ${pgno} is a ${h.intKey ? 'table' : 'index'} page in the ${tree.intKey ? 'table' : 'index'} b-tree ${tree.label}`);
      return;
    }
    if (depth > MAX_DEPTH) {
      this.#report(2, 'depth', pgno, `page ${pgno}: ${tree.label} is more than ${MAX_DEPTH} levels deep`);
      return;
    }
    if (h.leaf) {
      if (tree.leafDepth < 0) tree.leafDepth = depth;
      else if (tree.leafDepth !== depth) this.#report(2, 'depth', pgno, `page ${pgno}: leaf at depth ${depth} in ${tree.label}, whose other leaves are at depth ${tree.leafDepth}`);
    }
    if (this.#level < 2 && h.leaf && !tree.rows) return;

    const cells: Cell[] = [];
    for (let i = 0; i < h.nCell; i++) {
      const cell = this.#parseCell(data, pgno, h, i);
      if (cell === null) return;
      cells.push(cell);
    }
    if (this.#level >= 2) {
      this.#checkSpace(data, pgno, h, cells);
      this.#checkKeys(pgno, tree, cells, lo, hi);
    }
    if (tree.rows && h.leaf) {
      for (const cell of cells) tree.rows.push({ payload: this.#payload(data, cell), pgno });
    }
    if (this.#level >= 3) {
      for (let i = 0; i < cells.length; i++) {
        const cell = cells[i]!;
        if (cell.local < cell.payloadSize) this.#checkOverflow(pgno, cell, tree.label);
        if ((h.leaf || !h.intKey) && !recordFramingOk(data, cell)) {
          this.#report(3, 'record', pgno, `page ${pgno}: cell ${i} holds a malformed record (its header does not describe ${cell.payloadSize} bytes)`);
        }
      }
    }
    if (h.leaf) return;
    let low = lo;
    const children = cells.map((c) => c.child);
    children.push(h.right);
    for (let i = 0; i < children.length; i++) {
      const child = children[i]!;
      const high = i < cells.length ? cells[i]!.key : hi;
      const what = `${tree.label} (child ${i} of page ${pgno})`;
      if (this.#claim(child, tree.root, PTRMAP_BTREE, pgno, 2, what)) this.#walk(child, tree, depth + 1, low, high);
      if (i < cells.length) low = cells[i]!.key;
    }
  }

  /** Cells and freeblocks never share a byte; the gaps between them are the fragmented bytes. */
  #checkSpace(data: Uint8Array, pgno: number, h: PageHeader, cells: Cell[]): void {
    // (start << 16 | end) per cell and freeblock, sorted as unsigned integers
    let n = 0;
    let spans = this.#spans;
    if (spans.length < cells.length + this.#usable / 4) spans = this.#spans = new Uint32Array(cells.length + this.#usable / 4);
    for (const c of cells) spans[n++] = c.start * 65536 + (c.start + c.size - 1);
    for (let pc = h.firstFree; pc > 0; pc = (data[pc]! << 8) | data[pc + 1]!) {
      const size = (data[pc + 2]! << 8) | data[pc + 3]!;
      spans[n++] = pc * 65536 + (pc + size - 1);
    }
    const sorted = spans.subarray(0, n).sort();
    let prevEnd = h.content - 1;
    let frag = 0;
    for (let i = 0; i < n; i++) {
      const s = sorted[i]!;
      const start = s >>> 16;
      if (start <= prevEnd) {
        this.#report(2, 'overlap', pgno, `page ${pgno}: byte ${start} is used twice (cells or freeblocks overlap)`);
        return;
      }
      frag += start - prevEnd - 1;
      prevEnd = s & 0xffff;
    }
    frag += this.#usable - prevEnd - 1;
    if (frag !== h.frag) this.#report(2, 'fragmentation', pgno, `page ${pgno}: ${frag} fragmented bytes, the header says ${h.frag}`);
  }

  #checkKeys(pgno: number, tree: Tree, cells: Cell[], lo: Key | RecordKey | undefined, hi: Key | RecordKey | undefined): void {
    if (tree.intKey) {
      let prev = lo as Key | undefined;
      for (let i = 0; i < cells.length; i++) {
        const k = cells[i]!.key as Key;
        if ((prev !== undefined && k <= prev) || (hi !== undefined && k > (hi as Key))) {
          this.#report(2, 'key-order', pgno, `page ${pgno}: rowid ${k} (cell ${i}) is out of order in ${tree.label}`);
          return;
        }
        prev = k;
      }
      return;
    }
    const order = tree.keyOrder;
    if (order === null) return;
    let prev = lo as RecordKey | undefined;
    for (let i = 0; i < cells.length; i++) {
      const k = cells[i]!.key as RecordKey | undefined;
      if (k === undefined) {
        prev = undefined;
        continue;
      }
      // a malformed record compares as null: the record check (level 3) reports it
      if ((prev !== undefined && (compareRecordKeys(prev, k, order) ?? 0) > 0) || (hi !== undefined && (compareRecordKeys(k, hi as RecordKey, order) ?? 0) > 0)) {
        this.#report(2, 'key-order', pgno, `page ${pgno}: index key ${i} is out of order in ${tree.label}`);
        return;
      }
      prev = k;
    }
  }

  /** The cell's whole payload, following its overflow chain (bounded); null when unreadable. */
  #payload(data: Uint8Array, cell: Cell): Uint8Array | null {
    if (cell.local >= cell.payloadSize) return data.slice(cell.payloadAt, cell.payloadAt + cell.payloadSize);
    // a corrupt size must not become a huge allocation: the chain cannot hold more than the database
    if (cell.payloadSize - cell.local > this.#n * (this.#usable - 4)) return null;
    const out = new Uint8Array(cell.payloadSize);
    out.set(data.subarray(cell.payloadAt, cell.payloadAt + cell.local));
    let filled = cell.local;
    let next = cell.overflow;
    const step = this.#usable - 4;
    for (let hops = 0; filled < cell.payloadSize; hops++) {
      if (next < 1 || next > this.#n || hops > this.#n) return null;
      const page = this.#src.read(next);
      const take = Math.min(step, cell.payloadSize - filled);
      out.set(page.subarray(4, 4 + take), filled);
      filled += take;
      next = be32(page, 0);
      this.#src.release(page);
    }
    return out;
  }

  /** Like SQLite's checkList(): the chain is followed to its 0 terminator and must have exactly the pages the payload needs. */
  #checkOverflow(pgno: number, cell: Cell, label: string): void {
    const step = this.#usable - 4;
    const expected = Math.ceil((cell.payloadSize - cell.local) / step);
    const chain = this.#chainId--;
    const what = `the overflow chain of a cell on page ${pgno} (${label})`;
    let cur = cell.overflow;
    let prev = pgno;
    let count = 0;
    while (cur !== 0) {
      if (!this.#claim(cur, chain, count === 0 ? PTRMAP_OVERFLOW1 : PTRMAP_OVERFLOW2, prev, 3, what)) return;
      count++;
      const page = this.#src.read(cur);
      prev = cur;
      cur = be32(page, 0);
      this.#src.release(page);
    }
    if (count !== expected) {
      this.#report(3, 'overflow-length', pgno, `page ${pgno}: overflow chain has ${count} pages, the payload of ${cell.payloadSize} bytes needs ${expected}`);
    }
  }

  #checkFreelist(firstTrunk: number, expected: number): void {
    let count = 0;
    const perTrunk = Math.floor(this.#usable / 4) - 2;
    for (let trunk = firstTrunk; trunk !== 0; ) {
      if (!this.#claim(trunk, OWNER_FREELIST, PTRMAP_FREEPAGE, 0, 4, 'the freelist (trunk)')) break;
      count++;
      const page = this.#src.read(trunk);
      const dv = new DataView(page.buffer, page.byteOffset, page.length);
      const leaves = dv.getUint32(4);
      if (leaves > perTrunk) {
        this.#report(4, 'freelist', trunk, `freelist trunk page ${trunk} claims ${leaves} leaves; at most ${perTrunk} fit`);
        break;
      }
      for (let i = 0; i < leaves; i++) {
        if (this.#claim(dv.getUint32(8 + 4 * i), OWNER_FREELIST, PTRMAP_FREEPAGE, 0, 4, `the freelist (leaf ${i} of trunk ${trunk})`)) count++;
      }
      trunk = dv.getUint32(0);
      this.#src.release(page);
    }
    if (count !== expected) this.#report(4, 'freelist-count', 1, `the freelist holds ${count} pages; the header says ${expected}`);
  }

  /** The page holding the lock bytes (file offset 2^30): SQLite never uses it. */
  #pendingBytePage(): number {
    return lockBytePage(this.#src.pageSize);
  }

  /** SQLite's PTRMAP_PAGENO: the pointer-map page that holds `pgno`'s entry. */
  #pointerMapOf(pgno: number): number {
    const per = Math.floor(this.#usable / 5) + 1;
    const map = Math.floor((pgno - 2) / per) * per + 2;
    return map === this.#pendingBytePage() ? map + 1 : map;
  }

  #claimPointerMaps(): void {
    const per = Math.floor(this.#usable / 5) + 1;
    for (let base = 2; base <= this.#n; base += per) {
      const map = base === this.#pendingBytePage() ? base + 1 : base;
      if (map <= this.#n) this.#owner[map] = OWNER_PTRMAP;
    }
  }

  #checkPointerMaps(): void {
    let mapPgno = 0;
    let map: Uint8Array | null = null;
    for (let p = 3; p <= this.#n; p++) {
      const want = this.#pointerMapOf(p);
      if (want === p || this.#owner[p] === 0 || this.#owner[p] === OWNER_PENDING) continue;
      if (want !== mapPgno) {
        mapPgno = want;
        if (map !== null) this.#src.release(map);
        map = this.#src.read(want);
      }
      const at = 5 * (p - mapPgno - 1);
      const type = map![at]!;
      const parent = be32(map!, at + 1);
      if (type !== this.#expType[p] || parent !== this.#expParent[p]) {
        this.#report(4, 'pointer-map', mapPgno, `pointer map entry for page ${p} is (${type}, ${parent}); expected (${this.#expType[p]}, ${this.#expParent[p]})`);
      }
    }
  }

  #decodeSchema(rows: { payload: Uint8Array | null; pgno: number }[]): SchemaRow[] {
    const out: SchemaRow[] = [];
    for (const r of rows) {
      const rec = r.payload === null ? null : decodeRecord(r.payload, 0, r.payload.length);
      if (rec === null || rec.length < 5) {
        this.#report(5, 'schema', r.pgno, `page ${r.pgno}: a sqlite_schema row cannot be decoded`);
        continue;
      }
      const text = (v: Value): string | null => (v !== null && typeof v === 'object' && 'text' in v ? decodeText(v.text, this.#encoding) : null);
      const root = rec[3];
      out.push({
        type: text(rec[0]!) ?? '',
        name: text(rec[1]!) ?? '',
        tblName: text(rec[2]!) ?? '',
        rootpage: typeof root === 'number' ? root : typeof root === 'bigint' ? Number(root) : -1,
        sql: text(rec[4]!),
        pgno: r.pgno,
      });
    }
    return out;
  }

  #checkSchema(rows: SchemaRow[]): void {
    const tables = new Set(rows.filter((r) => r.type === 'table').map((r) => r.name.toLowerCase()));
    for (const r of rows) {
      const bad = (why: string) => this.#report(5, 'schema', r.rootpage > 0 && r.rootpage <= this.#n ? r.rootpage : r.pgno, `sqlite_schema ${r.type || '?'} ${JSON.stringify(r.name)}: ${why}`);
      const sql = r.sql === null ? null : r.sql.trimStart();
      const needsRoot = (r.type === 'table' && !(sql !== null && /^CREATE\s+VIRTUAL\s+TABLE\b/i.test(sql))) || r.type === 'index';
      switch (r.type) {
        case 'table':
          if (sql === null || !/^CREATE\s+(VIRTUAL\s+)?TABLE\b/i.test(sql)) bad('sql is not a CREATE TABLE statement');
          break;
        case 'index':
          if (sql === null ? !r.name.startsWith('sqlite_autoindex_') : !/^CREATE\s+(UNIQUE\s+)?INDEX\b/i.test(sql)) bad('sql is not a CREATE INDEX statement');
          if (!tables.has(r.tblName.toLowerCase())) bad(`indexes table ${JSON.stringify(r.tblName)}, which does not exist`);
          break;
        case 'view':
          if (sql === null || !/^CREATE\s+((TEMP|TEMPORARY)\s+)?VIEW\b/i.test(sql)) bad('sql is not a CREATE VIEW statement');
          break;
        case 'trigger':
          if (sql === null || !/^CREATE\s+((TEMP|TEMPORARY)\s+)?TRIGGER\b/i.test(sql)) bad('sql is not a CREATE TRIGGER statement');
          break;
        default:
          bad('type is not table, index, view or trigger');
          continue;
      }
      if (!needsRoot) {
        if (r.rootpage !== 0) bad(`rootpage is ${r.rootpage}; a ${r.type} has none`);
        continue;
      }
      if (r.rootpage < 1 || r.rootpage > this.#n) {
        bad(`rootpage ${r.rootpage} is not a page of the database`);
        continue;
      }
      const root = this.#src.read(r.rootpage);
      const type = root[0];
      this.#src.release(root);
      const wantTable = r.type === 'table' && !(sql !== null && /\bWITHOUT\s+ROWID\s*;?\s*$/i.test(sql));
      const isTable = type === 0x05 || type === 0x0d;
      const isIndex = type === 0x02 || type === 0x0a;
      if ((wantTable && !isTable) || (!wantTable && !isIndex)) bad(`root page ${r.rootpage} is not ${wantTable ? 'a table' : 'an index'} b-tree page`);
    }
  }
}

/**
 * A record's framing (record.ts): the header size is a varint of at least its own length and
 * within the payload, every serial type is valid, and header plus bodies is exactly the payload
 * size. Checked when the header lies in the cell's local part (always so for real records).
 */
const framing = new VarintReader();

function recordFramingOk(data: Uint8Array, cell: Cell): boolean {
  const v = framing;
  const localEnd = cell.payloadAt + cell.local;
  if (!v.readSize(data, cell.payloadAt, localEnd)) return cell.local < 9; // a header-size varint cut by the local part: not checkable
  const headerSize = v.value as number;
  if (headerSize < v.next - cell.payloadAt || headerSize > cell.payloadSize) return false;
  const headerEnd = cell.payloadAt + headerSize;
  if (headerEnd > localEnd) return true;
  let total = headerSize;
  for (let at = v.next; at < headerEnd; ) {
    if (!v.read(data, at, headerEnd) || typeof v.value !== 'number') return false;
    const n = serialTypeBytes(v.value);
    if (n < 0) return false;
    total += n;
    at = v.next;
  }
  return total === cell.payloadSize;
}

