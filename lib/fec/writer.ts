/**
 * fec/writer.ts — FecSidecarWriter: keeps `<db>-wal-fec` (sidecar.ts) in step with the WAL.
 *
 * The group committer hands over each batch once its frames are written (add()); the writer
 * copies the pages (the caller owns its buffers once the commit settles), and a background loop
 * encodes the repair symbols, hashes the pages and appends the group with one write on the
 * background I/O lane, then fdatasyncs the sidecar once its queue is empty. So the sidecar is
 * off the commit's latency path; the queue is bounded (QUEUE_LIMIT_BYTES of copied pages):
 * past it, room() returns a promise the committer awaits before its next batch (back-pressure,
 * never unbounded memory).
 *
 * Appends take an OFD lock on the sidecar so that several walnut processes writing one
 * database never interleave groups. Every group carries a copy of the WAL's header as it is on
 * disk (read before the group is encoded, and again under the lock: it must not have changed),
 * from which recovery restores a damaged header; a header on disk that is not usable (damaged:
 * its magic, page size or checksum fails) is never copied, and the groups of that append are
 * dropped (their frames get groups when the database is next opened with fec, after recovery
 * restored the header). Under the lock, the WAL's header on disk says which generation is
 * current: a group of another one (another process restarted or truncated the WAL meanwhile) is
 * dropped (staleGroups), and a group of the current one replaces groups of any other in the file
 * (the file is truncated first: they protect frames that no longer exist, or belong to an
 * earlier WAL of this path that SQLite removed without knowing the sidecar; such a leftover's
 * salt-1 is random, so it says nothing of which generation is newer). A TRUNCATE checkpoint
 * empties the file too (reset(), in queue order), but only of the generation this writer last
 * wrote. Before appending, the writer makes sure the file ends with a whole group: a torn last
 * group (a process killed while appending, an append cut short by a full disk) is cut off, since
 * the sidecar's scan stops there and would never reach a group appended after it. A failed
 * sidecar write never fails a commit: it is counted, reported as a 'fec' event, and that group's
 * frames are unprotected until a later append lands (then the lost groups are made as below) or
 * the database is next opened with fec: protectCommitted() then
 * makes the groups no group in the file covers, for the committed frames of the WAL's
 * generation (the last batches before a crash, whose groups were still queued; groups a failed
 * write lost), from the frames on disk once their checksum chain is checked.
 */
import * as fs from 'node:fs';

import { WalnutFile } from '../io/file';
import { requireRegularFiles } from '../io/real-path';
import type { EventRing } from '../telemetry/events';
import type { WalTransaction } from '../wal/wal-file';
import type { FecCodec } from './codec';
import { sqliteWalChecksum } from '../checksum';
import { FRAME_HEADER_SIZE } from '../format/frame-header';
import { bigEndianChecksum, decodeWalHeader, frameOffset, sameSalts, WAL_HEADER_SIZE } from '../format/wal-header';
import { decodeGroupHeader, encodeGroup, GROUP_FIXED_BYTES, GROUP_VERSION, groupHashHolds, pageHashes } from './sidecar';

const QUEUE_LIMIT_BYTES = 32 << 20;
const LOCK_TIMEOUT_MS = 5000;

export interface FecWriterMetrics {
  groups: number;
  frames: number;
  /** Groups dropped because the WAL had already restarted past their generation. */
  staleGroups: number;
  bytes: number;
  writeErrors: number;
  /** Batches that waited for room in the queue. */
  backpressureWaits: number;
  queuedBytes: number;
}

interface Job {
  /** A marker: empty the sidecar (the WAL was truncated), in order with the groups. */
  reset?: true;
  /** A marker: make the missing groups of frames 1..k of generation `salts` (protectCommitted). */
  backfill?: true;
  salts: [number, number];
  firstFrame: number;
  k: number;
  pages: Uint8Array;
  pgnos: Uint32Array;
  commits: Uint32Array;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function sidecarPathOf(walPath: string): string {
  return `${walPath}-fec`;
}

/** Opens (creates) the sidecar of the WAL at `walPath` for appending. */
async function openSidecarFile(walPath: string): Promise<WalnutFile> {
  // the sidecar gets the WAL's permissions, as the WAL and -shm get the database's
  let mode = 0o644;
  try {
    mode = fs.statSync(walPath).mode & 0o777;
  } catch {
    // no WAL yet: the default
  }
  requireRegularFiles(null, [sidecarPathOf(walPath)]); // a directory or FIFO there: WALNUT_CANTOPEN NotRegularFile, not a failed open
  const file = await WalnutFile.open(sidecarPathOf(walPath), { create: true, mode, lane: 'background' });
  try {
    fs.fchmodSync(file.fd, mode); // past the umask, like the -shm; on the descriptor, never through a link
  } catch {
    // another user's file: leave its mode
  }
  return file;
}

/** Whether `path` still names the file open on `fd` (not replaced by a rename, not removed). */
function stillNamed(fd: number, path: string): boolean {
  try {
    const open = fs.fstatSync(fd);
    const named = fs.statSync(path);
    return open.ino === named.ino && open.dev === named.dev;
  } catch {
    return false;
  }
}

export class FecSidecarWriter {
  #file: WalnutFile;
  readonly #codec: FecCodec;
  readonly #r: number;
  readonly #pageSize: number;
  readonly #events: EventRing | null;
  readonly #sync: boolean;
  readonly #queue: Job[] = [];
  readonly #roomWaiters: (() => void)[] = [];
  #queuedBytes = 0;
  #draining: Promise<void> | null = null;
  #closed = false;
  #lastSalts: [number, number] | null = null;
  /** Where the file's whole groups ended when this writer last appended or checked (-1: not known), and of which generation. */
  #wholeEnd = -1;
  #wholeSalts: [number, number] = [0, 0];
  /** The WAL, read for its header's salts (opened at the first append: the WAL exists by then). */
  #wal: WalnutFile | null = null;
  /** A write failed since the last one that landed: once one lands, the groups lost are made (#backfill). */
  #lostGroups = false;
  readonly #walPath: string;
  readonly #m = { groups: 0, frames: 0, bytes: 0, writeErrors: 0, backpressureWaits: 0, staleGroups: 0 };

  private constructor(walPath: string, file: WalnutFile, codec: FecCodec, r: number, pageSize: number, events: EventRing | null, sync: boolean) {
    this.#walPath = walPath;
    this.#file = file;
    this.#sync = sync;
    this.#codec = codec;
    this.#r = r;
    this.#pageSize = pageSize;
    this.#events = events;
  }

  /** `sync`: fdatasync the sidecar when the queue drains (false under synchronous 'off'). */
  static async open(walPath: string, codec: FecCodec, r: number, pageSize: number, events: EventRing | null, sync = true): Promise<FecSidecarWriter> {
    return new FecSidecarWriter(walPath, await openSidecarFile(walPath), codec, r, pageSize, events, sync);
  }

  get path(): string {
    return this.#file.path;
  }

  metrics(): FecWriterMetrics {
    return { ...this.#m, queuedBytes: this.#queuedBytes };
  }

  /** Takes a written batch: frames firstFrame.. of the WAL generation `salts`. */
  add(txns: readonly WalTransaction[], firstFrame: number, salts: [number, number]): void {
    if (this.#closed) return;
    const maxK = this.#codec.maxSources(this.#pageSize, this.#r);
    const ps = this.#pageSize;
    let frame = firstFrame;
    let job: Job | null = null;
    let at = 0;
    const flush = () => {
      if (job === null) return;
      this.#queue.push(job);
      this.#queuedBytes += job.pages.length;
      job = null;
    };
    let remaining = 0;
    for (const t of txns) remaining += t.pages.length;
    for (const t of txns) {
      for (let i = 0; i < t.pages.length; i++) {
        if (job === null) {
          const k = Math.min(maxK, remaining);
          job = { salts, firstFrame: frame, k, pages: new Uint8Array(k * ps), pgnos: new Uint32Array(k), commits: new Uint32Array(k) };
          at = 0;
        }
        const page = t.pages[i]!;
        job.pages.set(page.data, at * ps);
        job.pgnos[at] = page.pgno;
        job.commits[at] = i === t.pages.length - 1 ? t.dbSize : 0;
        at++;
        frame++;
        remaining--;
        if (at === job.k) flush();
      }
    }
    flush();
    if (this.#draining === null) this.#draining = this.#drainSafely();
  }

  /** Empties the sidecar once the groups queued before are written (the WAL was truncated). */
  reset(): void {
    if (this.#closed) return;
    this.#queue.push({ reset: true, salts: [0, 0], firstFrame: 0, k: 0, pages: new Uint8Array(0), pgnos: new Uint32Array(0), commits: new Uint32Array(0) });
    if (this.#draining === null) this.#draining = this.#drainSafely();
  }

  /**
   * Protects the committed frames 1..mxFrame of generation `salts` that no whole group in the
   * file covers (see the file comment), in queue order. Frames whose checksum chain does not
   * check are left alone (recovery will stop there anyway), and so is everything after them.
   */
  protectCommitted(mxFrame: number, salts: [number, number]): void {
    if (this.#closed || mxFrame < 1) return;
    this.#queue.push({ backfill: true, salts, firstFrame: 1, k: mxFrame, pages: new Uint8Array(0), pgnos: new Uint32Array(0), commits: new Uint32Array(0) });
    if (this.#draining === null) this.#draining = this.#drainSafely();
  }

  /** Null while the queue has room; else a promise for when it has (the caller waits: back-pressure). */
  room(): Promise<void> | null {
    if (this.#queuedBytes <= QUEUE_LIMIT_BYTES) return null;
    this.#m.backpressureWaits++;
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  /** Resolves when every group added so far is written and synced (or failed). */
  async flush(): Promise<void> {
    while (this.#draining !== null) await this.#draining;
  }

  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    await this.#wal?.close();
    await this.#file.close();
  }

  /** The drain loop never rejects: a sidecar problem must not become an unhandled rejection. */
  #drainSafely(): Promise<void> {
    return this.#drain().catch((e: { code?: string; message?: string }) => {
      this.#m.writeErrors++;
      this.#events?.emit('fec', () => ({ stage: 'write', path: this.#file.path, code: e?.code, message: e?.message }));
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const marker = this.#queue.findIndex((j) => j.reset || j.backfill);
        const batch = this.#queue.splice(0, marker === 0 ? 1 : marker < 0 ? this.#queue.length : marker);
        if (batch[0]!.reset) await this.#truncate();
        else if (batch[0]!.backfill) await this.#backfill(batch[0]!.k, batch[0]!.salts);
        else await this.#append(batch);
        for (const job of batch) this.#queuedBytes -= job.pages.length;
        for (const wake of this.#roomWaiters.splice(0)) wake();
      }
    } finally {
      this.#draining = null;
    }
  }

  /** The salts of the file's first group (null: empty or not a group). */
  async #fileSalts(): Promise<[number, number] | null> {
    const head = new Uint8Array(GROUP_FIXED_BYTES);
    if ((await this.#file.read(head, 0, GROUP_FIXED_BYTES, 0)) < GROUP_FIXED_BYTES) return null;
    return decodeGroupHeader(head)?.salts ?? null;
  }

  /**
   * Takes the append lock on the sidecar its path names now: a recovery's prune (repair.ts)
   * replaces the file by a rename, and a removed one is made anew; groups written to the file this
   * writer had open would be lost with it. The groups in a new file are checked (torn tail) and
   * those it lacks are made once an append lands (#lostGroups).
   */
  async #lockSidecar(): Promise<void> {
    await this.#file.lock(0, 1, 'exclusive', LOCK_TIMEOUT_MS);
    if (stillNamed(this.#file.fd, this.#file.path)) return;
    const old = this.#file;
    old.unlock(0, 1);
    this.#file = await openSidecarFile(this.#walPath);
    await old.close();
    this.#wholeEnd = -1;
    this.#lostGroups = true;
    this.#events?.emit('fec', () => ({ stage: 'reopen', path: this.#file.path }));
    await this.#file.lock(0, 1, 'exclusive', LOCK_TIMEOUT_MS);
  }

  /** The WAL, opened read-only on the background lane at its first use. */
  async #walFile(): Promise<WalnutFile> {
    this.#wal ??= await WalnutFile.open(this.#walPath, { readOnly: true, lane: 'background' });
    return this.#wal;
  }

  /**
   * The WAL's header on disk when it is a usable one (magic, page size and its own checksum
   * hold): its bytes, which every group carries (sidecar.ts), and its salts. Null when there is
   * no header (the WAL was truncated) or it is damaged: a group then protects nothing recovery
   * would read, and a copy of a damaged header must never be recorded as the one to restore.
   */
  async #walGeneration(): Promise<{ bytes: Uint8Array; salts: [number, number] } | null> {
    const head = new Uint8Array(WAL_HEADER_SIZE);
    if ((await (await this.#walFile()).read(head, 0, WAL_HEADER_SIZE, 0)) < WAL_HEADER_SIZE) return null;
    const d = decodeWalHeader(head);
    if (d.status !== 'ok') return null;
    return { bytes: head, salts: [d.header!.salt1, d.header!.salt2] };
  }

  /** The salts in the WAL's header on disk (null: no usable header, see #walGeneration). */
  async #walSalts(): Promise<[number, number] | null> {
    return (await this.#walGeneration())?.salts ?? null;
  }

  /**
   * The chain word of a job's group (sidecar.ts): the second word of the checksum stored in the
   * WAL just before its first frame (written before it: the frames are on disk by now). Null when
   * that frame no longer carries the job's salts (the WAL restarted since: the group is stale).
   */
  async #chainWordBefore(job: Job, walHeader: Uint8Array): Promise<number | null> {
    const wal = await this.#walFile();
    const head = new Uint8Array(FRAME_HEADER_SIZE);
    const dv = new DataView(head.buffer);
    // frame 1 follows the header (read and checked by the caller): its checksum's second word
    if (job.firstFrame === 1) return new DataView(walHeader.buffer, walHeader.byteOffset, WAL_HEADER_SIZE).getUint32(28);
    if ((await wal.read(head, 0, FRAME_HEADER_SIZE, frameOffset(job.firstFrame - 1, this.#pageSize))) < FRAME_HEADER_SIZE) return null;
    if (dv.getUint32(8) !== job.salts[0] || dv.getUint32(12) !== job.salts[1]) return null;
    return dv.getUint32(20);
  }

  /**
   * Where the whole, verified groups of the file (`size` bytes, its first group of generation
   * `salts`) end: from where this writer last knew them to end, if the file still holds that
   * generation and is no shorter, else from the start.
   */
  async #wholeGroupsEnd(size: number, salts: [number, number]): Promise<number> {
    const from = this.#wholeEnd >= 0 && this.#wholeEnd <= size && sameSalts(this.#wholeSalts, salts) ? this.#wholeEnd : 0;
    return (await this.#scan(from, size)).end;
  }

  /**
   * The whole, verified groups from `offset` on (`size`: the file's size), as scanSidecar finds
   * them (a damaged group whose header holds is passed over): where the last one ends, and the
   * frames each covers with its salts.
   */
  async #scan(offset: number, size: number): Promise<{ end: number; groups: { salts: [number, number]; first: number; last: number }[] }> {
    const fixed = new Uint8Array(GROUP_FIXED_BYTES);
    const groups: { salts: [number, number]; first: number; last: number }[] = [];
    let end = offset;
    while (offset + GROUP_FIXED_BYTES <= size) {
      if ((await this.#file.read(fixed, 0, GROUP_FIXED_BYTES, offset)) !== GROUP_FIXED_BYTES) break;
      const f = decodeGroupHeader(fixed);
      if (f === null || offset + f.length > size) break;
      const whole = new Uint8Array(f.length);
      if ((await this.#file.read(whole, 0, f.length, offset)) !== f.length) break;
      if (groupHashHolds(whole)) {
        groups.push({ salts: f.salts, first: f.firstFrame, last: f.firstFrame + f.k - 1 });
        end = offset + f.length;
      }
      offset += f.length;
    }
    return { end, groups };
  }

  /** protectCommitted's work: the frames of 1..mxFrame no group covers, in groups of at most maxSources frames. */
  async #backfill(mxFrame: number, salts: [number, number]): Promise<void> {
    try {
      const current = await this.#walSalts();
      if (current === null || !sameSalts(current, salts)) return; // the WAL restarted since: nothing of that generation to protect
      const covered = (await this.#scan(0, await this.#file.size())).groups.filter((g) => sameSalts(g.salts, salts)).sort((a, b) => a.first - b.first);
      const maxK = this.#codec.maxSources(this.#pageSize, this.#r);
      let next = 1;
      const gaps: [number, number][] = [];
      for (const g of covered) {
        if (g.first > next) gaps.push([next, Math.min(g.first - 1, mxFrame)]);
        next = Math.max(next, g.last + 1);
        if (next > mxFrame) break;
      }
      if (next <= mxFrame) gaps.push([next, mxFrame]);
      for (const [a, b] of gaps) {
        for (let first = a; first <= b; first += maxK) {
          const job = await this.#jobFromWal(first, Math.min(maxK, b - first + 1), salts);
          if (job === null) return;
          await this.#append([job], true);
          if (job.k < Math.min(maxK, b - first + 1)) return; // the chain broke inside: nothing after it is known good
        }
      }
    } catch (e) {
      this.#m.writeErrors++;
      const err = e as { code?: string; message?: string };
      this.#events?.emit('fec', () => ({ stage: 'backfill', path: this.#file.path, code: err.code, message: err.message }));
    }
  }

  /**
   * A job for frames first..first + k - 1 as they are in the WAL, cut at the first frame that is
   * not of generation `salts` or whose checksum does not continue its predecessor's (damaged since
   * it was written: a group must never make damage look intact); null when that is the first.
   */
  async #jobFromWal(first: number, k: number, salts: [number, number]): Promise<Job | null> {
    const wal = await this.#walFile();
    const ps = this.#pageSize;
    const frameBytes = FRAME_HEADER_SIZE + ps;
    const gen = await this.#walGeneration();
    if (gen === null) return null;
    const hv = new DataView(gen.bytes.buffer);
    if (hv.getUint32(8) !== ps) return null;
    const bigEndianWords = bigEndianChecksum(hv.getUint32(0));
    const prev = new Uint8Array(8);
    if ((await wal.read(prev, 0, 8, first === 1 ? 24 : frameOffset(first - 1, ps) + 16)) < 8) return null;
    const pv = new DataView(prev.buffer);
    let c: [number, number] = [pv.getUint32(0), pv.getUint32(4)];
    const frames = new Uint8Array(k * frameBytes);
    const got = await wal.read(frames, 0, frames.length, frameOffset(first, ps));
    const fv = new DataView(frames.buffer);
    let good = 0;
    for (; good < Math.floor(got / frameBytes); good++) {
      const at = good * frameBytes;
      if (fv.getUint32(at + 8) !== salts[0] || fv.getUint32(at + 12) !== salts[1]) break;
      c = sqliteWalChecksum(frames, c[0], c[1], { offset: at, length: 8, bigEndianWords });
      c = sqliteWalChecksum(frames, c[0], c[1], { offset: at + FRAME_HEADER_SIZE, length: ps, bigEndianWords });
      if (c[0] !== fv.getUint32(at + 16) || c[1] !== fv.getUint32(at + 20)) break;
    }
    if (good === 0) return null;
    const job: Job = { salts, firstFrame: first, k: good, pages: new Uint8Array(good * ps), pgnos: new Uint32Array(good), commits: new Uint32Array(good) };
    for (let i = 0; i < good; i++) {
      const at = i * frameBytes;
      job.pgnos[i] = fv.getUint32(at);
      job.commits[i] = fv.getUint32(at + 4);
      job.pages.set(frames.subarray(at + FRAME_HEADER_SIZE, at + frameBytes), i * ps);
    }
    return job;
  }

  async #truncate(): Promise<void> {
    try {
      await this.#lockSidecar();
      try {
        const salts = await this.#fileSalts();
        const mine = this.#lastSalts;
        if (salts === null || mine === null || sameSalts(salts, mine)) await this.#file.truncate(0);
      } finally {
        this.#file.unlock(0, 1);
      }
    } catch (e) {
      this.#m.writeErrors++;
      const err = e as { code?: string; message?: string };
      this.#events?.emit('fec', () => ({ stage: 'reset', path: this.#file.path, code: err.code, message: err.message }));
    }
  }

  /** `backfill`: jobs of #backfill (their success does not start another one). */
  async #append(jobs: Job[], backfill = false): Promise<void> {
    const groups: Uint8Array[] = [];
    let locked = false;
    try {
      // the header every group of this append carries (sidecar.ts): the WAL's on disk, checked
      const header = await this.#walGeneration();
      for (const job of jobs) {
        // encoding runs here, between commits' turns of the event loop (rs: ~0.1 ms for 64 pages)
        await new Promise<void>((resolve) => setImmediate(resolve));
        const chainWord = header !== null && sameSalts(header.salts, job.salts) ? await this.#chainWordBefore(job, header.bytes) : null;
        if (chainWord === null) {
          // the WAL is of another generation now (or its header unusable): dropped below
          groups.push(new Uint8Array(0));
          continue;
        }
        const repair = this.#codec.encode(job.pages, job.k, this.#pageSize, this.#r);
        groups.push(encodeGroup({ codec: this.#codec.name, salts: job.salts, firstFrame: job.firstFrame, k: job.k, r: this.#r, pageSize: this.#pageSize, chainWord, version: GROUP_VERSION, walHeader: header!.bytes, pgnos: job.pgnos, commits: job.commits, hashes: pageHashes(job.pages, job.k, this.#pageSize), repair }, this.#codec.id));
      }
      locked = true; // (a failed lock: unlocking what is not held changes nothing)
      await this.#lockSidecar();
      // only groups of the WAL's current generation protect anything, and only with its header as it is on disk now
      const now = await this.#walGeneration();
      const current = now !== null && header !== null && sameBytes(now.bytes, header.bytes) ? now.salts : null;
      const keep = jobs.filter((j, i) => current !== null && sameSalts(j.salts, current) && groups[i]!.length > 0);
      this.#m.staleGroups += jobs.length - keep.length;
      if (keep.length === 0 || current === null) return;
      let size = await this.#file.size();
      const inFile = size > 0 ? await this.#fileSalts() : null;
      if (size > 0 && (inFile === null || !sameSalts(inFile, current))) {
        await this.#file.truncate(0); // groups of another generation (or not groups at all)
        size = 0;
      } else if (size > 0 && !(size === this.#wholeEnd && sameSalts(this.#wholeSalts, current))) {
        const end = await this.#wholeGroupsEnd(size, current);
        if (end < size) {
          await this.#file.truncate(end);
          this.#events?.emit('fec', () => ({ stage: 'torn-tail', path: this.#file.path, offset: end, bytes: size - end }));
          size = end;
        }
      }
      this.#wholeEnd = -1; // until the write below is known to have landed whole
      const part = keep.map((j) => groups[jobs.indexOf(j)]!);
      await this.#file.writevLent(part, size, this.#sync && this.#queue.length === 0 ? 'data' : 'none'); // the writer's own groups
      for (let i = 0; i < keep.length; i++) {
        this.#m.groups++;
        this.#m.frames += keep[i]!.k;
        this.#m.bytes += part[i]!.length;
        size += part[i]!.length;
      }
      this.#lastSalts = current;
      this.#wholeEnd = size;
      this.#wholeSalts = current;
      if (this.#lostGroups && !backfill) {
        // the sidecar takes writes again (room on a full disk): the groups failed writes lost, from the WAL
        this.#lostGroups = false;
        this.#queue.push({ backfill: true, salts: current, firstFrame: 1, k: keep[0]!.firstFrame - 1, pages: new Uint8Array(0), pgnos: new Uint32Array(0), commits: new Uint32Array(0) });
      }
    } catch (e) {
      this.#lostGroups = true;
      this.#m.writeErrors++;
      const err = e as { code?: string; message?: string };
      this.#events?.emit('fec', () => ({ stage: 'write', path: this.#file.path, code: err.code, message: err.message, frames: jobs.reduce((n, j) => n + j.k, 0) }));
    } finally {
      if (locked) this.#file.unlock(0, 1);
    }
  }
}
