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
 * database never interleave groups. A group with salts other than the file's first group's
 * belongs to a new WAL generation: the file is truncated first (the old groups protect frames
 * that no longer exist); a TRUNCATE checkpoint empties it too (reset(), in queue order). Salt-1
 * grows by one at every restart (SQLite's rule, and walnut's), so a group older than the file's
 * (another process restarted the WAL meanwhile) is dropped, not allowed to wipe the newer ones;
 * and reset() only removes the generation this writer last wrote. A failed sidecar write never fails a commit: it is counted, reported
 * as a 'fec' event, and that group's frames are unprotected.
 */
import * as fs from 'node:fs';

import { WalnutFile } from '../io/file';
import { requireRegularFiles } from '../io/real-path';
import type { EventRing } from '../telemetry/events';
import type { WalTransaction } from '../wal/wal-file';
import type { FecCodec } from './codec';
import { decodeGroupHeader, encodeGroup, GROUP_FIXED_BYTES, pageHashes } from './sidecar';

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
  salts: [number, number];
  firstFrame: number;
  k: number;
  pages: Uint8Array;
  pgnos: Uint32Array;
  commits: Uint32Array;
}

export function sidecarPathOf(walPath: string): string {
  return `${walPath}-fec`;
}

export class FecSidecarWriter {
  readonly #file: WalnutFile;
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
  readonly #m = { groups: 0, frames: 0, bytes: 0, writeErrors: 0, backpressureWaits: 0, staleGroups: 0 };

  private constructor(file: WalnutFile, codec: FecCodec, r: number, pageSize: number, events: EventRing | null, sync: boolean) {
    this.#file = file;
    this.#sync = sync;
    this.#codec = codec;
    this.#r = r;
    this.#pageSize = pageSize;
    this.#events = events;
  }

  /** `sync`: fdatasync the sidecar when the queue drains (false under synchronous 'off'). */
  static async open(walPath: string, codec: FecCodec, r: number, pageSize: number, events: EventRing | null, sync = true): Promise<FecSidecarWriter> {
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
    return new FecSidecarWriter(file, codec, r, pageSize, events, sync);
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
        const marker = this.#queue.findIndex((j) => j.reset);
        const batch = this.#queue.splice(0, marker === 0 ? 1 : marker < 0 ? this.#queue.length : marker);
        if (batch[0]!.reset) await this.#truncate();
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

  async #truncate(): Promise<void> {
    try {
      await this.#file.lock(0, 1, 'exclusive', LOCK_TIMEOUT_MS);
      try {
        const salts = await this.#fileSalts();
        const mine = this.#lastSalts;
        if (salts === null || mine === null || (salts[0] === mine[0] && salts[1] === mine[1])) await this.#file.truncate(0);
      } finally {
        this.#file.unlock(0, 1);
      }
    } catch (e) {
      this.#m.writeErrors++;
      const err = e as { code?: string; message?: string };
      this.#events?.emit('fec', () => ({ stage: 'reset', path: this.#file.path, code: err.code, message: err.message }));
    }
  }

  async #append(jobs: Job[]): Promise<void> {
    const groups: Uint8Array[] = [];
    let locked = false;
    try {
      for (const job of jobs) {
        // encoding runs here, between commits' turns of the event loop (rs: ~0.1 ms for 64 pages)
        await new Promise<void>((resolve) => setImmediate(resolve));
        const repair = this.#codec.encode(job.pages, job.k, this.#pageSize, this.#r);
        groups.push(encodeGroup({ codec: this.#codec.name, salts: job.salts, firstFrame: job.firstFrame, k: job.k, r: this.#r, pageSize: this.#pageSize, pgnos: job.pgnos, commits: job.commits, hashes: pageHashes(job.pages, job.k, this.#pageSize), repair }, this.#codec.id));
      }
      await this.#file.lock(0, 1, 'exclusive', LOCK_TIMEOUT_MS);
      locked = true;
      let size = await this.#file.size();
      // a new WAL generation: the groups in the file protect frames that are gone
      const first = jobs[0]!.salts;
      const inFile = size > 0 ? await this.#fileSalts() : null;
      if (inFile !== null && ((first[0] - inFile[0]) | 0) < 0) {
        // this process's groups are older than the file's: the WAL restarted since
        this.#m.staleGroups += jobs.length;
        return;
      }
      if (size > 0 && (inFile === null || inFile[0] !== first[0] || inFile[1] !== first[1])) {
        await this.#file.truncate(0);
        size = 0;
      }
      // one generation per write: a batch list spanning a restart is written in two parts
      let start = 0;
      while (start < groups.length) {
        let end = start + 1;
        while (end < groups.length && jobs[end]!.salts[0] === jobs[start]!.salts[0] && jobs[end]!.salts[1] === jobs[start]!.salts[1]) end++;
        if (start > 0) {
          await this.#file.truncate(0);
          size = 0;
        }
        const part = groups.slice(start, end);
        await this.#file.writevLent(part, size, this.#sync && this.#queue.length === 0 ? 'data' : 'none'); // the writer's own groups
        for (let i = start; i < end; i++) {
          this.#m.groups++;
          this.#m.frames += jobs[i]!.k;
          this.#m.bytes += groups[i]!.length;
          size += groups[i]!.length;
        }
        this.#lastSalts = jobs[start]!.salts;
        start = end;
      }
    } catch (e) {
      this.#m.writeErrors++;
      const err = e as { code?: string; message?: string };
      this.#events?.emit('fec', () => ({ stage: 'write', path: this.#file.path, code: err.code, message: err.message, frames: jobs.reduce((n, j) => n + j.k, 0) }));
    } finally {
      if (locked) this.#file.unlock(0, 1);
    }
  }
}
