/**
 * export/exporter.ts — Exporter: a consistent base image, then every committed transaction,
 * as walnut records (records.ts) in an ARKHEXP1 stream (framing.ts).
 *
 * Invariants:
 *  - The base image is read under one snapshot (pages 1..dbSize of that view) and ends with
 *    BASE_END carrying its xxh3-128.
 *  - The exporter always holds a WAL read mark (snapshots with useWal), so no writer — walnut
 *    or sqlite3 — can restart the WAL over frames it has not exported yet.
 *  - A generation is exported from its frame 1 after a WAL_HEADER record, so a restore can
 *    verify the whole checksum chain (frames the base already holds are replayed harmlessly;
 *    as a consequence, point-in-time restore reaches the commits made after the export began).
 *  - Each transaction is FRAMES record(s) (bit-exact WAL frames, at most 16 MiB each) ending
 *    at its commit frame, then COMMIT_META (sequence, time, xxh3-128 of its frames).
 *  - In follow mode, holding the read mark would stop the WAL from ever restarting. The
 *    exporter registers as a follower of its connection: when that connection's writer could
 *    restart (holding WRITE) and the exporter has taken every frame, its mark is released and
 *    the restart goes ahead. When the writers are other processes, the exporter restarts the
 *    WAL itself once caught up and everything is checkpointed, under WRITE
 *    (WalIndex.restartForFollower). Either way no frame can slip in between.
 */
import { Xxh3Stream } from '../checksum';
import { FRAME_HEADER_SIZE } from '../format/frame-header';
import { decodeWalHeader, WAL_HEADER_SIZE } from '../format/wal-header';
import type { Snapshot } from '../wal-index/snapshot';
import type { WalIndex } from '../wal-index/wal-index';
import { walnutError } from '../errors';
import { BaseImageReader } from './base-reader';
import { appendFramedRecords, MAX_RECORD, type WalRecordSink } from './framing';
import { encodeBaseEndRecord, encodeCommitMetaRecord, encodeFramesRecord, encodeWalHeaderRecord } from './records';

export interface ExportOptions {
  /** Keep exporting new commits until stop() (default false: base image and the WAL as of now). */
  follow?: boolean;
  /** How often follow mode looks for commits made by other processes (ms, default 20). */
  pollMs?: number;
}

export interface ExportStats {
  records: number;
  commits: number;
  generations: number;
  basePages: number;
}

/** The longest poll interval setTimeout keeps (2^31 - 1 ms); a longer one would fire at once. */
const MAX_POLL_MS = 0x7fffffff;

/** Export options: undefined or null (none), else follow a boolean and pollMs a whole number of ms. */
function checkExportOptions(options: unknown): ExportOptions {
  const invalid = (reason: string, message: string): never => {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `export option ${message}`, { reason });
  };
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) invalid('options', 'options must be an object: { follow, pollMs }');
  const o = options as Record<string, unknown>;
  if (o['follow'] !== undefined && typeof o['follow'] !== 'boolean') invalid('follow', 'follow must be true or false');
  const poll = o['pollMs'];
  if (poll !== undefined && (typeof poll !== 'number' || !Number.isInteger(poll) || poll < 1 || poll > MAX_POLL_MS)) invalid('pollMs', `pollMs must be an integer in 1..${MAX_POLL_MS}`);
  return o as ExportOptions;
}

export function hashBytes(h: Xxh3Stream): Uint8Array {
  const v = h.digest128();
  const out = new Uint8Array(16);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, v >> 64n);
  dv.setBigUint64(8, v & 0xffffffffffffffffn);
  return out;
}

export class Exporter {
  readonly #index: WalIndex;
  readonly #sink: WalRecordSink;
  readonly #follow: boolean;
  readonly #pollMs: number;
  readonly #stats: ExportStats = { records: 0, commits: 0, generations: 0, basePages: 0 };
  #salts: [number, number] | null = null;
  #pos = 0;
  #seq = 0n;
  #stopped = false;
  #wake: (() => void) | null = null;

  constructor(index: WalIndex, sink: WalRecordSink, options: ExportOptions = {}) {
    this.#index = index;
    this.#sink = sink;
    const o = checkExportOptions(options);
    this.#follow = o.follow === true;
    this.#pollMs = o.pollMs ?? 20;
  }

  get stats(): ExportStats {
    return { ...this.#stats };
  }

  /** Ends follow mode after a last pass over what is committed now; run() then resolves. */
  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  /** Look for new commits now (the store calls this after its own commits). */
  poke(): void {
    this.#wake?.();
  }

  async run(): Promise<ExportStats> {
    let snap = await this.#index.beginRead({ useWal: true });
    const unregister = this.#index.addFollower({
      position: () => ({ mxFrame: this.#pos, salts: this.#salts ?? [0, 0] }),
      releaseMark: () => snap.release(),
    });
    try {
      await this.#base(snap);
      await this.#frames(snap);
      await this.#sink.flush();
      while (this.#follow && !this.#stopped) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.#pollMs);
          this.#wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.#wake = null;
        if (this.#stopped) break;
        const live = this.#index.liveHeader();
        if (live !== null && live.mxFrame === this.#pos && this.#salts && live.salts[0] === this.#salts[0] && live.salts[1] === this.#salts[1]) {
          // caught up: let the WAL restart if everything is checkpointed (we block it otherwise)
          const held = snap;
          if (this.#pos > 0 && (await this.#index.restartForFollower(this.#pos, () => held.release()))) {
            snap = await this.#index.beginRead({ useWal: true });
          } else if (held.released) {
            snap = await this.#index.beginRead({ useWal: true });
          }
          continue;
        }
        if (snap.released) {
          // this connection's writer restarted the WAL after we had taken everything
          snap = await this.#index.beginRead({ useWal: true });
        } else {
          const next = await this.#index.beginRead({ useWal: true });
          snap.release();
          snap = next;
        }
        await this.#frames(snap);
        await this.#sink.flush();
      }
      if (this.#follow) {
        // a last pass: everything committed before stop() is in the stream
        const last = await this.#index.beginRead({ useWal: true });
        snap.release();
        snap = last;
        await this.#frames(snap);
        await this.#sink.flush();
      }
      return this.stats;
    } finally {
      unregister();
      snap.release();
    }
  }

  async #append(payload: Uint8Array): Promise<void> {
    await this.#sink.appendRecord(payload);
    this.#stats.records++;
  }

  async #base(snap: Snapshot): Promise<void> {
    const base = await BaseImageReader.open(this.#index, snap);
    try {
      for (let chunk = await base.next(); chunk !== null; chunk = await base.next()) {
        await appendFramedRecords(this.#sink, chunk.framed, chunk.records);
        this.#stats.records += chunk.records;
        this.#stats.basePages += chunk.pages;
      }
    } finally {
      await base.close();
    }
    await this.#append(encodeBaseEndRecord(snap.dbSize, base.digest()));
  }

  /** Exports frames (pos, snapshot's mxFrame] of the snapshot's generation. */
  async #frames(snap: Snapshot): Promise<void> {
    const gen = snap.generation;
    if (gen.mxFrame === 0) return;
    const wal = this.#index.wal.file;
    if (this.#salts === null || this.#salts[0] !== gen.salts[0] || this.#salts[1] !== gen.salts[1]) {
      const head = new Uint8Array(WAL_HEADER_SIZE);
      await wal.read(head, 0, WAL_HEADER_SIZE, 0);
      const h = decodeWalHeader(head);
      if (h.status !== 'ok' || h.header!.salt1 !== gen.salts[0] || h.header!.salt2 !== gen.salts[1]) {
        throw walnutError('WALNUT_CORRUPT', 'the WAL header on disk is not the generation the wal-index describes', { path: this.#index.walPath });
      }
      await this.#append(encodeWalHeaderRecord(head));
      this.#salts = [gen.salts[0], gen.salts[1]];
      this.#pos = 0;
      this.#stats.generations++;
    }
    const pageSize = this.#index.pageSize;
    const frameSize = FRAME_HEADER_SIZE + pageSize;
    const framesPerRecord = Math.max(1, Math.floor((MAX_RECORD - 1) / frameSize));
    let txn: Uint8Array[] = [];
    let hash = new Xxh3Stream();
    const READ_FRAMES = 256;
    for (let f = this.#pos + 1; f <= gen.mxFrame; f += READ_FRAMES) {
      const count = Math.min(READ_FRAMES, gen.mxFrame - f + 1);
      const buf = Buffer.allocUnsafe(count * frameSize);
      const got = await wal.read(buf, 0, buf.length, WAL_HEADER_SIZE + (f - 1) * frameSize);
      if (got !== buf.length) throw walnutError('WALNUT_CORRUPT', `frame ${f + Math.floor(got / frameSize)} is missing from the WAL`, { path: this.#index.walPath });
      for (let i = 0; i < count; i++) {
        const frame = buf.subarray(i * frameSize, (i + 1) * frameSize);
        txn.push(frame);
        hash.update(frame);
        if (txn.length === framesPerRecord) {
          await this.#append(encodeFramesRecord(txn));
          txn = [];
        }
        if (frame.readUInt32BE(4) !== 0) {
          if (txn.length > 0) await this.#append(encodeFramesRecord(txn));
          txn = [];
          await this.#append(encodeCommitMetaRecord(++this.#seq, BigInt(Date.now()), hashBytes(hash)));
          hash = new Xxh3Stream();
          this.#stats.commits++;
        }
      }
    }
    this.#pos = gen.mxFrame;
  }
}
