/**
 * export/framing.ts — the ARKHEXP1 framing (DESIGN.md section 5; reference/arkhe-export.md).
 *
 *   stream  = magic record*
 *   magic   = "ARKHEXP1"                              (8 bytes)
 *   record  = length payload                          (u64 big-endian, then `length` bytes)
 *   0 < length <= 16,777,216
 *
 * Fixed forever: a later format gets a new magic (StreamMagic), never a silent reuse. The
 * reader checks every length before it allocates or reads the payload. End of input exactly
 * between records is a clean end; anywhere else it is Truncated. Every failure is a WalnutError
 * WALNUT_INVALID_FRAMING with a `reason` (errors.ts FramingReason).
 *
 * Sinks have two verbs only, appendRecord and flush (no seek, truncate or rewrite; the optional
 * appendFramed appends records already framed; a BufferedWalSink over a file also lends the
 * file's end to the exporter's base image, appendDirect, which moves on past what was written
 * there), so an exported stream is append-only by construction. BufferedWalSink's failure rule: a flush
 * that fails puts the sink in a failed state that refuses every later call, because the
 * target may hold any prefix of the buffer and a retry could duplicate or lose bytes. A
 * Writable destroyed before or during a flush fails that flush (it would never drain).
 */
import type { Writable } from 'node:stream';

import { describeValue, uint8Length, viewBytes } from '../arguments';
import { diskFull, walnutError, WalnutError, type FramingReason } from '../errors';
import { be32 } from '../format/frame-header';
import { WalnutFile } from '../io/file';
import { startWriteback, WRITEBACK_BYTES } from './page-writer';

export const MAX_RECORD = 16 * 1024 * 1024;
export const MAGIC_LENGTH = 8;

/** Versioned stream tags. */
export class StreamMagic {
  static readonly V1 = new StreamMagic('ARKHEXP1');
  private constructor(readonly tag: string) {}
  bytes(): Uint8Array {
    return new TextEncoder().encode(this.tag);
  }
  /** The version these 8 bytes announce, or null. */
  static recognize(bytes: Uint8Array): StreamMagic | null {
    if (uint8Length(bytes) !== MAGIC_LENGTH) return null; // anything but 8 bytes (undefined, null: a raw TypeError before)
    const v1 = StreamMagic.V1.tag;
    for (let i = 0; i < MAGIC_LENGTH; i++) if (bytes[i] !== v1.charCodeAt(i)) return null;
    return StreamMagic.V1;
  }
}

function framing(reason: FramingReason, message: string, extra: Record<string, unknown> = {}) {
  const e = walnutError('WALNUT_INVALID_FRAMING', `${reason}: ${message}`, { reason });
  Object.assign(e, extra);
  return e;
}

export function checkRecordLength(length: number): void {
  if (length === 0) throw framing('ZeroLength', 'a record must have at least one byte');
  if (length > MAX_RECORD) throw framing('LengthExceedsMax', `a record may hold at most ${MAX_RECORD} bytes, not ${length}`, { max: MAX_RECORD, length });
}

/**
 * Hands out byte ranges carved from 1 MiB blocks, and the same blocks again after reuse():
 * memory that is already mapped and warm. A fresh allocation per 4 KiB record costs ten times
 * the framing itself here (page faults, external-memory GC). The owner calls reuse() only once
 * no range handed out is referenced any more. Ranges over a quarter block get memory of their own.
 */
export class ByteBlocks {
  static readonly BLOCK = 1 << 20;
  readonly #blocks: Buffer[] = [];
  #current = -1;
  #used = ByteBlocks.BLOCK;

  /** `n` uninitialised bytes. */
  take(n: number): Buffer {
    if (n > ByteBlocks.BLOCK >>> 2) return Buffer.allocUnsafeSlow(n);
    if (this.#used + n > ByteBlocks.BLOCK) {
      if (++this.#current === this.#blocks.length) this.#blocks.push(Buffer.allocUnsafeSlow(ByteBlocks.BLOCK));
      this.#used = 0;
    }
    const out = this.#blocks[this.#current]!.subarray(this.#used, this.#used + n);
    this.#used += n;
    return out;
  }

  /** Every range handed out so far is dead: their memory is handed out again. */
  reuse(): void {
    this.#current = -1;
    this.#used = ByteBlocks.BLOCK;
  }

  /** The ranges handed out so far may live on elsewhere: later ones come from new blocks. */
  forget(): void {
    this.#blocks.length = 0;
    this.reuse();
  }
}

/** Where a sink's bytes go. */
export interface WalRecordSink {
  appendRecord(payload: Uint8Array): Promise<void>;
  flush(): Promise<void>;
  /**
   * Optional: several records in order, in one call. The caller reuses their memory once the
   * promise settles: the sink copies what it keeps (without it, the export hands each record
   * to appendRecord as a copy of its own).
   */
  appendRecords?(payloads: readonly Uint8Array[]): Promise<void>;
  /**
   * Optional: `records` complete records already framed (u64 length, payload, ...). The sink
   * copies what it keeps before it returns (BufferedWalSink: the buffer is the caller's again
   * once the call returns, to change or transfer); unless `owned`: the caller never touches
   * `framed` again (nor transfers it), and the sink may keep it as it is. appendFramedRecords() falls back to appendRecord() for other sinks.
   */
  appendFramed?(framed: Uint8Array, records: number, owned?: boolean): Promise<void>;
}

/**
 * What a sink asks of the exporter's commit records to be encoded as (the sink's property
 * PAGE_DELTAS; the replication's sessions, replicate/publisher.ts): pages sent again as
 * PAGE_DELTA against their previous version in the stream, at most `versionBudget` bytes of
 * versions kept (0: none, so no delta), and runs of whole frames of at most `runFrames` frames
 * per FRAMES record (its messages' size). Framed natively inside the WAL read
 * (native/commit_records.h, delta mode); the base image's pages are the first versions.
 */
export interface SinkPageDeltas {
  versionBudget: number;
  runFrames: number;
}

/** The property of a sink holding its SinkPageDeltas (not part of the public WalRecordSink). */
export const PAGE_DELTAS = Symbol('walnut.sinkPageDeltas');

/** The sink's SinkPageDeltas, if it asks for them. */
export function pageDeltasOf(sink: WalRecordSink): SinkPageDeltas | null {
  return (sink as { [PAGE_DELTAS]?: SinkPageDeltas })[PAGE_DELTAS] ?? null;
}

/**
 * Sends framed records through the sink's appendFramed, or record by record, each payload one
 * the sink may keep: a copy (the caller reuses `framed` once this resolves), or, when `owned`
 * (the caller never touches `framed` again), a view.
 */
export async function appendFramedRecords(sink: WalRecordSink, framed: Uint8Array, records: number, owned = false): Promise<void> {
  if (sink.appendFramed !== undefined) return sink.appendFramed(framed, records, owned);
  for (const payload of framedPayloads(framed, records)) await sink.appendRecord(owned ? payload : new Uint8Array(payload)); // a copy (Buffer#slice would be a view)
}

/**
 * The payloads of `records` framed records filling `framed` exactly, each length checked
 * before it is used; WALNUT_INVALID_ARGUMENT (reason 'framed') when they do not fit.
 */
export function framedPayloads(framed: Uint8Array, records: number): Uint8Array[] {
  checkFramed(framed, records);
  const size = uint8Length(framed); // its own size (not a `length` of the caller's)
  const out: Uint8Array[] = new Array(records);
  for (let i = 0, at = 0; at < size; i++) {
    const length = be32(framed, at + 4);
    out[i] = framed.subarray(at + 8, at + 8 + length);
    at += 8 + length;
  }
  return out;
}

/**
 * That `records` framed records fill `framed` exactly, each length checked;
 * WALNUT_INVALID_ARGUMENT (reason 'framed') when they do not. framedPayloads checks with it; a
 * sink that reads the records in place calls it alone (replicate/publisher.ts: a view per record
 * was garbage per commit on the replication worker).
 */
export function checkFramed(framed: Uint8Array, records: number): void {
  const size = uint8Length(framed);
  if (size < 0) throw walnutError('WALNUT_INVALID_ARGUMENT', 'framed records must be a Uint8Array', { reason: 'framed' });
  let n = 0;
  for (let at = 0; at < size; n++) {
    if (size - at < 8 || (framed[at]! | framed[at + 1]! | framed[at + 2]! | framed[at + 3]!) !== 0) throw badFraming(at);
    const length = be32(framed, at + 4);
    checkRecordLength(length);
    if (size - at - 8 < length) throw badFraming(at);
    at += 8 + length;
  }
  if (n !== records) throw walnutError('WALNUT_INVALID_ARGUMENT', `framed holds ${n} records, not ${records}`, { reason: 'framed' });
}

function badFraming(at: number) {
  return walnutError('WALNUT_INVALID_ARGUMENT', `framed records: the record at byte ${at} does not fit`, { reason: 'framed' });
}

/** Appends records to a sink's file itself (appendDirect): resolves to what it wrote. */
export type DirectWrite = (file: WalnutFile, position: number) => Promise<{ bytes: number; records: number }>;

/**
 * A sink that also takes several records in order in one call (the exporter's own, stream.ts);
 * the caller may reuse the payloads' memory once that call has settled. When `direct`, the
 * caller may append records to the sink's file itself (appendDirect).
 */
export interface RecordBatchSink extends WalRecordSink {
  appendRecords(payloads: readonly Uint8Array[]): Promise<void>;
  /** What the caller's sink asks the commit records to be encoded as (SinkPageDeltas), or null. */
  readonly pageDeltas: SinkPageDeltas | null;
  readonly direct: boolean;
  appendDirect(write: DirectWrite): Promise<void>;
}

type Target = { kind: 'writable'; stream: Writable } | { kind: 'file'; file: WalnutFile; position: number };

/**
 * BufferedWalSink's arguments (it is public): a Writable (something with write() and on()) or a
 * WalnutFile, and options { bufferBytes: whole number >= 1, position: byte offset >= 0 }; anything
 * else is WALNUT_INVALID_ARGUMENT naming it, before the sink exists.
 */
function checkSinkArguments(target: unknown, options: unknown): void {
  const isWritable = typeof target === 'object' && target !== null && typeof (target as Writable).write === 'function' && typeof (target as Writable).on === 'function';
  if (!(target instanceof WalnutFile) && !isWritable) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `a BufferedWalSink writes to a Writable or a WalnutFile, not ${target === null ? 'null' : typeof target}`, { reason: 'target' });
  }
  if (options === null || typeof options !== 'object') {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `BufferedWalSink options must be { bufferBytes?, position? }, not ${options === null ? 'null' : typeof options}`, { reason: 'options' });
  }
  for (const k in options) {
    if (k !== 'bufferBytes' && k !== 'position') throw walnutError('WALNUT_INVALID_ARGUMENT', `BufferedWalSink option ${k} does not exist (only bufferBytes, position)`, { reason: 'options' });
  }
  const { bufferBytes, position } = options as { bufferBytes?: unknown; position?: unknown };
  if (bufferBytes !== undefined && (typeof bufferBytes !== 'number' || !Number.isSafeInteger(bufferBytes) || bufferBytes < 1)) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', 'bufferBytes must be a whole number of bytes >= 1', { reason: 'bufferBytes' });
  }
  if (position !== undefined && (typeof position !== 'number' || !Number.isSafeInteger(position) || position < 0)) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', 'position must be a byte offset (a whole number >= 0)', { reason: 'position' });
  }
}

/**
 * Buffers framed records and writes them to a Node Writable or a walnut file on flush (or
 * when the buffer passes `bufferBytes`). The magic goes out with the first flush.
 * Durability of a file target: no fsync (a follow export flushes once per pass, and an fsync
 * each would cost the disk the writers commit on); the kernel is told to write the bytes back
 * once every WRITEBACK_BYTES written, however small the flushes (a follow export's pass is
 * one commit batch or a few, 64-256 KiB beside 64 committers), so the stream reaches the disk
 * within about a MiB of its end, in steady small writes, instead of in the kernel's periodic
 * bursts of many MiB (dirty writeback, up to 30 s behind) in front of the writers' fsyncs. A
 * stream cut there (power loss) restores its last complete commit; for a durable end, stop()
 * the export and fsync the file.
 */
export class BufferedWalSink implements WalRecordSink {
  readonly #target: Target;
  readonly #bufferBytes: number;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  readonly #blocks = new ByteBlocks();
  #headerWritten = false;
  #failed: Error | null = null;
  #records = 0;
  #bytes = 0;
  /** A file target's bytes from here on have not been handed to writeback yet. */
  #writebackFrom: number;
  /**
   * A Writable target may emit 'error' when no write of the export waits on it (a peer's
   * ECONNRESET between two flushes; a stream destroyed while its buffered writes were queued):
   * a caller that left the failure to handle.done has no listener of its own, and the event
   * would be an uncaught exception that ends the process. This listener, on the stream while the
   * export uses it (detach()), keeps it: the error stays in stream.errored, and the next write
   * fails with it (writeAll: a destroyed stream).
   */
  readonly #keepError = (): void => undefined;

  constructor(target: Writable | WalnutFile, options: { bufferBytes?: number; position?: number } = {}) {
    checkSinkArguments(target, options);
    this.#target = target instanceof WalnutFile ? { kind: 'file', file: target, position: options.position ?? 0 } : { kind: 'writable', stream: target };
    if (this.#target.kind === 'writable') (target as Writable).on('error', this.#keepError);
    this.#bufferBytes = options.bufferBytes ?? 4 << 20;
    this.#writebackFrom = options.position ?? 0;
  }

  /** The export is over: its 'error' listener leaves a Writable target (errors from here on are the caller's). */
  detach(): void {
    if (this.#target.kind === 'writable') this.#target.stream.off('error', this.#keepError);
  }

  /** Records and bytes handed to the target so far (magic included). */
  get stats(): { records: number; bytes: number } {
    return { records: this.#records, bytes: this.#bytes };
  }

  async appendRecord(payload: Uint8Array): Promise<void> {
    this.#checkUsable();
    // its own size, not a `length` of the caller's: the copy below copies that many bytes (a
    // length saying more left a reused block's bytes in the record, one saying less threw)
    const length = uint8Length(payload);
    if (length < 0) throw walnutError('WALNUT_INVALID_ARGUMENT', 'a record payload must be a Uint8Array', { reason: 'payload' });
    checkRecordLength(length); // before a byte is buffered
    if (!this.#headerWritten && this.#pending.length === 0) this.#push(StreamMagic.V1.bytes());
    const framed = this.#blocks.take(8 + length); // a copy: the caller may reuse its buffer
    framed.writeUInt32BE(0, 0); // the high half of the u64 length: a record is at most MAX_RECORD bytes
    framed.writeUInt32BE(length, 4);
    framed.set(payload, 8);
    this.#push(framed);
    this.#records++;
    if (this.#pendingBytes >= this.#bufferBytes) await this.flush();
  }

  /**
   * A file target gets `framed` written at once, with what is pending, in one pwritev; the sink
   * keeps a copy (a file's I/O thread, or a Writable, may use the bytes after this call returns:
   * a caller changing or transferring `framed` meanwhile would write other bytes than the
   * lengths checked here, or free memory the I/O thread reads), or `framed` itself when it is
   * `owned` (the caller never touches it again: the exporter's own chunks).
   */
  async appendFramed(framed: Uint8Array, records: number, owned = false): Promise<void> {
    this.#checkUsable();
    // the copy first, then its records checked: every byte written is a byte checked (checked
    // within framed.length, a property the caller may set, the copy of all of it held more)
    const bytes = owned || uint8Length(framed) < 0 ? framed : new Uint8Array(framed); // (Buffer#slice would be a view)
    framedPayloads(bytes, records); // every length checked before a byte is buffered
    if (!this.#headerWritten && this.#pending.length === 0) this.#push(StreamMagic.V1.bytes());
    const direct = this.#target.kind === 'file';
    this.#push(bytes);
    this.#records += records;
    if (direct || this.#pendingBytes >= this.#bufferBytes) await this.flush();
  }

  /** Is the target a file, which appendDirect() lends? */
  get writesFile(): boolean {
    return this.#target.kind === 'file';
  }

  /**
   * For a file target: writes what is pending (the magic too), then lets `write` append records
   * to the file at the offset it is given, and goes on after them. A `write` that fails leaves
   * the sink failed (the file may hold part of its records). WALNUT_INVALID_ARGUMENT for a Writable.
   */
  async appendDirect(write: DirectWrite): Promise<void> {
    this.#checkUsable();
    const target = this.#target;
    if (target.kind !== 'file') throw walnutError('WALNUT_INVALID_ARGUMENT', 'appendDirect needs a file target', { reason: 'target' });
    if (!this.#headerWritten && this.#pending.length === 0) this.#push(StreamMagic.V1.bytes());
    await this.flush();
    let wrote: { bytes: number; records: number };
    try {
      wrote = await write(target.file, target.position);
    } catch (e) {
      this.#failed = e instanceof Error ? e : new Error(String(e));
      // the sink's file closed by its owner under the export is the sink failing, as a failed
      // write is (flush): WALNUT_CLOSED stays the store's own close() (the WAL or database closed)
      if (e instanceof WalnutError && e.code === 'WALNUT_CLOSED' && target.file.closed) {
        throw walnutError('WALNUT_IO', `export sink write failed: the sink's file was closed; the sink is now unusable`, { reason: 'SinkClosed', cause: e });
      }
      throw e;
    }
    target.position += wrote.bytes;
    this.#writebackFrom = target.position; // the direct writer starts its own chunks' writeback
    this.#records += wrote.records;
    this.#bytes += wrote.bytes;
  }

  async flush(): Promise<void> {
    this.#checkUsable();
    if (this.#pending.length === 0) return;
    const parts = this.#pending;
    const bytes = this.#pendingBytes;
    try {
      if (this.#target.kind === 'file') {
        // lent: walnut's blocks, appendFramed()'s copies and the framed buffers given to it owned
        const target = this.#target;
        await target.file.writevLent(parts, target.position);
        target.position += bytes;
        if (target.position - this.#writebackFrom >= WRITEBACK_BYTES) {
          startWriteback(target.file, this.#writebackFrom, target.position - this.#writebackFrom);
          this.#writebackFrom = target.position;
        }
      } else {
        await writeAll(this.#target.stream, parts);
      }
    } catch (e) {
      this.#failed = e instanceof Error ? e : new Error(String(e));
      // the sink's file closed by its owner: SinkClosed, as appendDirect says it (the flush
      // meets it first when the file is closed at once: the magic, the base image's records)
      if (this.#target.kind === 'file' && e instanceof WalnutError && e.code === 'WALNUT_CLOSED' && this.#target.file.closed) {
        throw walnutError('WALNUT_IO', `export sink write failed: the sink's file was closed; the sink is now unusable`, { reason: 'SinkClosed', cause: e });
      }
      throw walnutError(diskFull(e) ? 'WALNUT_FULL' : 'WALNUT_IO', `export sink write failed; the sink is now unusable (the target may hold part of the batch): ${(e as Error).message}`, { cause: e });
    }
    this.#headerWritten = true;
    this.#pending = [];
    this.#pendingBytes = 0;
    // written to the file, nothing refers to the copies any more; a Writable may still hold them
    if (this.#target.kind === 'file') this.#blocks.reuse();
    else this.#blocks.forget();
    this.#bytes += bytes;
  }

  /** Queues `b`; a range that continues the last one in memory (ByteBlocks) widens it: one iovec. */
  #push(b: Uint8Array): void {
    const last = this.#pending[this.#pending.length - 1];
    if (last !== undefined && last.buffer === b.buffer && last.byteOffset + last.length === b.byteOffset) {
      this.#pending[this.#pending.length - 1] = new Uint8Array(last.buffer, last.byteOffset, last.length + b.length);
    } else {
      this.#pending.push(b);
    }
    this.#pendingBytes += b.length;
  }

  #checkUsable(): void {
    if (this.#failed) throw walnutError('WALNUT_FAILED', `the export sink failed earlier (${this.#failed.message}); start a new stream`, { cause: this.#failed });
  }
}

/**
 * Writes `parts`, then waits for 'drain' when the stream asks. A stream destroyed before or
 * meanwhile (a client that went away) emits neither 'drain' nor, without an error of its own,
 * 'error': it fails the write instead of leaving it (and the export's snapshot) waiting forever.
 */
function writeAll(stream: Writable, parts: Uint8Array[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const gone = (): Error => stream.errored ?? new Error('the stream was destroyed');
    if (stream.destroyed) {
      reject(gone());
      return;
    }
    const finish = (e: Error | null): void => {
      stream.off('error', finish).off('close', onClose).off('drain', onDrain);
      if (e === null) resolve();
      else reject(e);
    };
    const onClose = (): void => finish(gone());
    const onDrain = (): void => finish(null);
    stream.once('error', finish).once('close', onClose);
    let ok = true;
    for (const p of parts) ok = stream.write(p);
    if (ok) finish(null);
    else stream.once('drain', onDrain);
  });
}

/** WALNUT_INVALID_FRAMING (UnsupportedStreamVersion) unless `bytes` (8) are the ARKHEXP1 magic. */
function checkMagic(bytes: Uint8Array): void {
  if (StreamMagic.recognize(bytes) === null) {
    throw framing('UnsupportedStreamVersion', `unknown stream tag ${JSON.stringify(Buffer.from(bytes).toString('latin1'))}`, { tag: Buffer.from(bytes).toString('hex') });
  }
}

/** The record length in the 8-byte prefix at the start of `bytes`, checked. */
function prefixedLength(bytes: Uint8Array): number {
  const length = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0);
  if (length === 0n) throw framing('ZeroLength', 'a zero-length record');
  if (length > BigInt(MAX_RECORD)) throw framing('LengthExceedsMax', `record length ${length} exceeds ${MAX_RECORD}`, { max: MAX_RECORD });
  return Number(length);
}

/** Records of one kind that a WalStreamReader.fromFile() caller reads from the file itself. */
export interface FileDivert {
  /** The payload's first byte (its kind) that marks them. */
  kind: number;
  /**
   * Takes what it can of the records from the one whose length prefix is at file offset
   * `offset` on, and resolves to the offset to go on at: `offset` itself when it took none (that
   * record is then yielded as usual).
   */
  take(offset: number): Promise<number>;
}

export interface FileReadOptions {
  divert?: FileDivert;
  /** Told the file offset read up to, after each read and each diverted run. */
  onProgress?: (offset: number) => void;
  readBytes?: number;
}

/** A stream file is read in reads of this size, into FILE_READ_BUFFERS buffers reused in turn. */
const FILE_READ_BYTES = 8 << 20;
const FILE_READ_BUFFERS = 4;
const FIRST_READ_BYTES = 64 << 10;

/**
 * Incremental parser shared by the sync and async readers: a state machine that needs the
 * magic (8 bytes), then a length (8), then exactly that many payload bytes. A payload that lies
 * whole in one input chunk is a view of that chunk (no copy: the input's chunks must not be
 * reused by their producer, as no Node stream does); one spread over chunks is copied, each
 * byte once, into a buffer allocated only after its length was checked.
 */
class RecordParser {
  #state: 'magic' | 'length' | 'payload' = 'magic';
  /** Bytes the current state needs. */
  #need = MAGIC_LENGTH;
  /** Where they are gathered; null until a payload turns out to span chunks. */
  #acc: Uint8Array | null;
  /** The magic's and the length prefixes' bytes (never handed out). */
  readonly #small = new Uint8Array(8);

  constructor() {
    this.#acc = this.#small;
  }
  #fill = 0;
  readonly #ready: Uint8Array[] = [];
  /** A framing error found after some complete records: delivered after them. */
  #error: unknown = null;

  push(chunk: Uint8Array): void {
    if (this.#error !== null) return;
    let at = 0;
    try {
      while (at < chunk.length) {
        if (this.#state === 'payload' && this.#fill === 0 && chunk.length - at >= this.#need) {
          this.#ready.push(chunk.subarray(at, at + this.#need));
          at += this.#need;
          this.#expect('length', 8);
          continue;
        }
        // not zeroed first: a payload is handed out only once every byte is filled
        this.#acc ??= Buffer.allocUnsafeSlow(this.#need);
        const take = Math.min(this.#need - this.#fill, chunk.length - at);
        this.#acc.set(chunk.subarray(at, at + take), this.#fill);
        this.#fill += take;
        at += take;
        if (this.#fill === this.#need) this.#complete(this.#acc);
      }
    } catch (e) {
      this.#error = e;
    }
  }

  #complete(acc: Uint8Array): void {
    if (this.#state === 'magic') {
      checkMagic(acc);
      this.#expect('length', 8);
    } else if (this.#state === 'length') {
      this.#expect('payload', prefixedLength(acc));
    } else {
      this.#ready.push(acc);
      this.#expect('length', 8);
    }
  }

  #expect(state: 'length' | 'payload', n: number): void {
    this.#state = state;
    this.#need = n;
    this.#acc = state === 'payload' ? null : this.#small;
    this.#fill = 0;
  }

  /** The next complete record, or null when more input is needed. */
  next(): Uint8Array | null {
    const r = this.#ready.shift();
    if (r !== undefined) return r;
    if (this.#error !== null) throw this.#error;
    return null;
  }

  end(): void {
    if (this.#error !== null) throw this.#error;
    if (this.#state === 'magic') throw framing('HeaderMissing', `the stream ends before its 8-byte ARKHEXP1 header (${this.#fill} bytes)`);
    if (this.#state === 'payload' || this.#fill > 0) throw framing('Truncated', `the stream ends inside a record (${this.#state === 'payload' ? 'payload' : 'length prefix'}, ${this.#fill} bytes of it)`);
  }
}

/**
 * The bytes of a chunk of a stream read, or WALNUT_INVALID_ARGUMENT (`reason`): anything but an
 * ArrayBufferView (a number, an object, a detached buffer) was read as no bytes at all, a
 * stream of ['ARKHEXP1', 5] as a clean empty stream.
 */
function chunkBytes(chunk: unknown, reason = 'chunk'): Uint8Array {
  const bytes = viewBytes(chunk);
  if (bytes === null || bytes === 'detached') {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `a stream chunk must be a Uint8Array (or a string), not ${bytes === 'detached' ? 'a view of a detached buffer' : describeValue(chunk)}`, { reason });
  }
  return bytes;
}

/**
 * Reads records: `for await (const payload of WalStreamReader.from(readable))`, or
 * `WalStreamReader.fromBuffer(buffer)` for a synchronous iterator. A payload may be a view of
 * the input (of `buffer`, or of one chunk of the source): the input must stay unchanged while
 * payloads are in use.
 */
export class WalStreamReader {
  /** Not constructed: the static from(), fromBuffer() and fromFile() read a stream (`new WalStreamReader(5)` made an object with no use). */
  private constructor() {
    throw walnutError('WALNUT_INVALID_ARGUMENT', 'WalStreamReader is not constructed: WalStreamReader.from(), fromBuffer() or fromFile() read a stream', { reason: 'constructor' });
  }

  static async *from(source: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    if (source === null || typeof source !== 'object' || !(Symbol.asyncIterator in source || Symbol.iterator in source)) {
      throw walnutError('WALNUT_INVALID_ARGUMENT', `WalStreamReader.from reads a Readable or an (async) iterable of Uint8Array chunks, not ${describeValue(source)}`, { reason: 'source' });
    }
    const parser = new RecordParser();
    for await (const chunk of source as AsyncIterable<Uint8Array | string>) {
      parser.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunkBytes(chunk));
      for (let r = parser.next(); r !== null; r = parser.next()) yield r;
    }
    parser.end();
  }

  /**
   * Records of a stream file, read with positioned reads of FILE_READ_BYTES into a few buffers
   * allocated once and reused in turn (memory already mapped: fresh buffers cost page faults,
   * and copying a record out of small chunks costs a pass over every byte). Nearly every payload
   * is a view of a read buffer; a record that runs past the end of one is read again, whole,
   * from the file into the next (one larger than a buffer into memory of its own). When the
   * reader moves on from a buffer it calls `release`, and reuses that buffer only once the
   * promise returned has resolved: from then on the caller must hold no payload it was given so
   * far (it copies what it keeps, waits for writes from them). Same framing checks and errors
   * as from(). Options: `divert` hands records of one kind to the caller, who reads them from
   * the file itself (FileDivert); `onProgress` hears the file offset read up to after each read.
   * (`readBytes`: tests use small reads.)
   */
  static async *fromFile(file: WalnutFile, release: () => Promise<void>, options: FileReadOptions | number = {}): AsyncGenerator<Uint8Array> {
    if (!(file instanceof WalnutFile)) throw walnutError('WALNUT_INVALID_ARGUMENT', `WalStreamReader.fromFile reads a WalnutFile, not ${describeValue(file)}`, { reason: 'file' });
    if (typeof release !== 'function') throw walnutError('WALNUT_INVALID_ARGUMENT', `WalStreamReader.fromFile needs a release function, not ${describeValue(release)}`, { reason: 'release' });
    if (options === null || (typeof options !== 'object' && typeof options !== 'number')) throw walnutError('WALNUT_INVALID_ARGUMENT', `WalStreamReader.fromFile options must be an object or a read size, not ${describeValue(options)}`, { reason: 'options' });
    const { readBytes = FILE_READ_BYTES, divert, onProgress } = typeof options === 'number' ? { readBytes: options } : options; // a number: readBytes (the first signature)
    if (!Number.isSafeInteger(readBytes) || readBytes < 16) throw walnutError('WALNUT_INVALID_ARGUMENT', `WalStreamReader.fromFile readBytes must be a whole number >= 16, not ${describeValue(readBytes)}`, { reason: 'readBytes' });
    // each buffer has room before its read for the tail of the previous one (a record begun
    // there): the next read is under way while the records before it are used
    const slack = readBytes >>> 1;
    type Slot = { bytes: Buffer; released: Promise<void> | null };
    const pool: Slot[] = [];
    let nextFree = 0;
    const takeSlot = (): Slot => {
      if (pool.length < FILE_READ_BUFFERS) pool.push({ bytes: Buffer.allocUnsafeSlow(slack + readBytes), released: null });
      const slot = pool[nextFree]!;
      nextFree = (nextFree + 1) % FILE_READ_BUFFERS;
      return slot;
    };
    let current: Slot | null = null;
    let ahead: { slot: Slot; from: number; read: Promise<number> } | null = null;
    let buf: Uint8Array = new Uint8Array(0);
    let base = 0; // the file offset of buf[0]
    let filled = 0;
    let at = 0;
    let eof = false;
    // With a divert, the first read (and the first after a diverted run) is small and reads
    // nothing ahead: what follows may be the diverted records, which this reader never needs.
    const firstRead = Math.min(readBytes, FIRST_READ_BYTES);
    let small = divert !== undefined;
    /** Reads from the first unconsumed byte on into a buffer of at least `need` bytes. */
    const refill = async (need: number): Promise<void> => {
      if (current !== null) current.released = release();
      const tail = filled - at;
      const next = ahead;
      ahead = null;
      if (next !== null && next.from === base + filled && tail <= slack && need <= tail + readBytes) {
        const n = await next.read; // fewer only at the end of the file
        next.slot.bytes.set(buf.subarray(at, filled), slack - tail); // the tail: moved, not read again
        buf = next.slot.bytes.subarray(slack - tail, slack + n);
        current = next.slot;
        eof = n < readBytes;
      } else {
        await next?.read.catch(() => undefined); // its buffer is read into again below or later
        let bytes: Buffer;
        if (need > slack + readBytes) {
          bytes = Buffer.allocUnsafeSlow(need);
          current = null;
        } else {
          current = takeSlot();
          await current.released;
          bytes = current.bytes;
        }
        const length = small ? Math.min(bytes.length, Math.max(need, firstRead)) : bytes.length;
        const n = await file.readLent(bytes, 0, length, base + at); // the reader's own slots
        buf = bytes.subarray(0, n);
        eof = n < length;
      }
      base += at;
      at = 0;
      filled = buf.length;
      onProgress?.(base + filled);
      const readAhead = !small;
      small = false;
      if (!eof && readAhead) {
        const slot = takeSlot();
        const from = base + filled;
        const read = (async () => {
          await slot.released;
          return file.readLent(slot.bytes, slack, readBytes, from);
        })();
        read.catch(() => undefined); // awaited by the next refill; never unhandled
        ahead = { slot, from, read };
      }
    };
    /** Goes on at file offset `to` with nothing buffered (the read under way is dropped). */
    const skipTo = async (to: number): Promise<void> => {
      await ahead?.read.catch(() => undefined);
      ahead = null;
      if (current !== null) current.released = release();
      current = null;
      base = to;
      at = filled = 0;
      buf = new Uint8Array(0);
      eof = false;
      small = true;
      onProgress?.(to);
    };
    /** Are `n` bytes available from `at` (reading more when needed)? */
    const have = async (n: number): Promise<boolean> => {
      if (filled - at < n && !eof) await refill(n);
      return filled - at >= n;
    };
    if (!(await have(MAGIC_LENGTH))) throw framing('HeaderMissing', `the stream ends before its 8-byte ARKHEXP1 header (${filled - at} bytes)`);
    checkMagic(buf.subarray(at, at + MAGIC_LENGTH));
    at += MAGIC_LENGTH;
    let undiverted = -1; // the offset of a record divert.take() left: yielded as usual
    for (;;) {
      if (!(await have(8))) {
        if (filled === at) return;
        throw framing('Truncated', `the stream ends inside a record (length prefix, ${filled - at} bytes of it)`);
      }
      const length = prefixedLength(buf.subarray(at, at + 8));
      if (divert !== undefined && base + at !== undiverted && (await have(9)) && buf[at + 8] === divert.kind) {
        const from = base + at;
        const to = await divert.take(from);
        if (to === from) undiverted = from;
        else await skipTo(to);
        continue;
      }
      if (!(await have(8 + length))) throw framing('Truncated', `the stream ends inside a record (payload, ${filled - at - 8} bytes of it)`);
      yield buf.subarray(at + 8, at + 8 + length);
      at += 8 + length;
    }
  }

  static *fromBuffer(bytes: Uint8Array): Generator<Uint8Array> {
    const parser = new RecordParser();
    parser.push(chunkBytes(bytes, 'bytes'));
    for (let r = parser.next(); r !== null; r = parser.next()) yield r;
    parser.end();
  }
}
