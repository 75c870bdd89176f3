/**
 * replicate/position.ts — ReplicaPosition: where a replica is in its stream, in `<db>-replica`
 * beside the database file (fileOf: the path's symbolic links followed, as the store keeps the
 * -wal and -shm beside the file a link names; walnut/sql and restore look for it there).
 *
 * Format: two 1 MiB slots; a slot is u32 length L, 16-byte xxh3-128 of the JSON, then L bytes
 * of JSON ({ counter, ... }). A write goes to the slot not holding the newest valid record,
 * then fdatasync, both on the addon's I/O thread (the replica's event loop goes on meanwhile;
 * replica.ts awaits each write before the next): a torn write leaves the other slot, so a read
 * always finds the last record whose write completed (or none).
 *
 * What the record says (replica.ts relies on it): the applied state (session, commit seq, the
 * log's stream sequence to read on from) and, while a batch of commits is being applied, the
 * intent: the state after it and a witness (the xxh3-128 of the pages the batch writes, in page
 * order, and the database size). The intent is written, synced, before the batch's commit; on
 * reopen the database shows which of the two states it is in (replica.ts resolveIntent).
 *
 * The intent's page numbers are stored as runs (`pageRuns`: gap from the end of the run before,
 * length; flattened), not as a list: one primary commit is never split across batches, and a
 * commit of ~150,000 pages (a bulk load or a VACUUM of a 600 MB database of 4 KiB pages) made
 * the list's JSON outgrow its 1 MiB slot; the replica then refused its own intent on every try
 * and never applied anything again. A run-encoded intent that still does not fit (hundreds of
 * thousands of scattered pages) is the replica's to replace by a whole-database witness
 * (`fits()`; replica.ts). Records written with `pages` as a list (before runs) are still read.
 *
 * One replica at a time: the open file holds an exclusive lock on a byte past both slots (an
 * OFD lock: dropped when the process dies); a second open is WALNUT_BUSY, reason ReplicaInUse.
 */
import * as fs from 'node:fs';

import { xxh3_128Into } from '../checksum';
import { walnutError, WalnutError } from '../errors';
import { WalnutFile } from '../io/file';
import { resolvedPath } from '../io/real-path';
import { MAX_STREAM_NAME } from './nats';

const SLOT = 1 << 20;
const HEAD = 20;
/** The byte a replica locks (past both slots: no read or write touches it). */
const LOCK_BYTE = 2 * SLOT;

export interface AppliedState {
  session: string;
  seq: number;
  /** The log message (stream sequence) to read on from. */
  logNext: number;
}

export interface PositionRecord {
  /** 'creating': a first base image is being written to the database (it may be partial). */
  state: 'creating' | 'ready';
  applied: AppliedState | null;
  intent: { to: AppliedState; dbSize: number; pages: number[] | 'all'; witness: string } | null;
  /** The JetStream stream the replica follows (written by open()'s caller's stream; absent in records of walnut before it kept it). */
  stream?: string;
}

export class ReplicaPosition {
  #file: WalnutFile | null;
  readonly #stream: string;
  #counter = 0;
  #slot = 0;

  private constructor(file: WalnutFile, stream: string) {
    this.#file = file;
    this.#stream = stream;
  }

  static pathOf(dbPath: string): string {
    return `${dbPath}-replica`;
  }

  /**
   * The database file whose position file a replica opened at `dbPath` keeps (`pathOf` it): the
   * path with its symbolic links followed (io/real-path.ts resolvedPath; a dangling link names the
   * file the replica creates), so the position file sits beside the database file, as its -wal
   * and -shm do. It sat beside the path as given: a replica opened through a link `link.db` to
   * `real.db` kept `link.db-replica`, so walnut/sql opened `real.db` (by that name, a relative
   * one or /proc/self/fd/N) read-write, not as a replica's (test/hostile/sql-read-only-replica-link).
   * Such a position file, left by a replica of before, is moved beside the file (a rename: a
   * replica still holding it keeps its lock); where it cannot be (another file system) it stays,
   * and `dbPath` as given is the replica's.
   */
  static fileOf(dbPath: string): string {
    const file = resolvedPath(dbPath);
    const given = ReplicaPosition.pathOf(dbPath);
    const beside = ReplicaPosition.pathOf(file);
    // (a link among the directories: both name one file, which exists or not for both)
    if (given === beside || fs.existsSync(beside) || !fs.existsSync(given)) return file;
    try {
      fs.renameSync(given, beside);
      return file;
    } catch {
      return dbPath;
    }
  }

  static exists(dbPath: string): boolean {
    return fs.existsSync(ReplicaPosition.pathOf(dbPath));
  }

  /**
   * Whether a live replica (of any process, this one's too) holds the position file of `dbPath`:
   * its lock byte is taken. False when there is none or it cannot be opened.
   */
  static heldByAReplica(dbPath: string): boolean {
    let f: WalnutFile;
    try {
      f = WalnutFile.openSync(ReplicaPosition.pathOf(dbPath), { nonBlocking: true });
    } catch {
      return false;
    }
    try {
      return !f.tryLock(LOCK_BYTE, 1, 'exclusive'); // (an OFD lock of this descriptor's own: dropped as it closes)
    } finally {
      f.closeSync();
    }
  }

  /**
   * Opens (creating it when missing) the position file of `dbPath`, a replica of `stream`; the
   * record read, or null. A replica of another stream is refused (WALNUT_INVALID_ARGUMENT reason
   * OtherStream), the files untouched: resumed, it took the other stream's session for a new one
   * of its primary and re-based onto that database, replacing the replica without a word.
   */
  static open(dbPath: string, stream: string): { position: ReplicaPosition; record: PositionRecord | null } {
    const file = ReplicaPosition.pathOf(dbPath);
    let f: WalnutFile;
    try {
      f = WalnutFile.openSync(file, { create: true, mode: 0o644 });
    } catch (e) {
      if (e instanceof WalnutError) throw e;
      throw walnutError('WALNUT_CANTOPEN', `cannot open the replica position file ${file}: ${(e as Error).message}`, { path: file, cause: e });
    }
    if (!f.tryLock(LOCK_BYTE, 1, 'exclusive')) {
      f.closeSync();
      throw walnutError('WALNUT_BUSY', `${dbPath} is being replicated by another replica (${file} is locked)`, { path: dbPath, reason: 'ReplicaInUse' });
    }
    const position = new ReplicaPosition(f, stream);
    let best: { counter: number; slot: number; record: PositionRecord } | null = null;
    for (const slot of [0, 1]) {
      const r = position.#read(slot);
      if (r !== null && (best === null || r.counter > best.counter)) best = { ...r, slot };
    }
    const followed = best?.record.state === 'ready' ? best.record.stream : undefined;
    if (followed !== undefined && followed !== stream) {
      f.closeSync();
      throw walnutError('WALNUT_INVALID_ARGUMENT', `${dbPath} is a replica of the JetStream stream ${followed}, not ${stream}; a replica follows one stream (give it ${followed}, or a new path for ${stream})`, { path: dbPath, reason: 'OtherStream' });
    }
    if (best !== null) {
      position.#counter = best.counter;
      position.#slot = best.slot;
    }
    return { position, record: best?.record ?? null };
  }

  #read(slot: number): { counter: number; record: PositionRecord } | null {
    const head = Buffer.alloc(HEAD);
    if (this.#file!.readSync(head, 0, HEAD, slot * SLOT) !== HEAD) return null;
    const length = head.readUInt32BE(0);
    if (length === 0 || length > SLOT - HEAD) return null;
    const body = Buffer.alloc(length);
    if (this.#file!.readSync(body, 0, length, slot * SLOT + HEAD) !== length) return null;
    const hash = Buffer.alloc(16);
    xxh3_128Into(body, hash);
    if (!hash.equals(head.subarray(4, 20))) return null;
    try {
      const { counter, ...stored } = JSON.parse(body.toString('utf8')) as StoredRecord & { counter: number };
      return { counter, record: decodeRecord(stored) };
    } catch {
      return null;
    }
  }

  /**
   * Whether `record` fits a slot (write() refuses one that does not), with what write() adds:
   * the longest stream name and the longest counter (it grows by one per write for the
   * replica's life; counted as 0, a record that just fit was refused once the counter had more
   * digits: test/hostile/replica-position-fits).
   */
  static fits(record: PositionRecord): boolean {
    return Buffer.byteLength(encodeRecord(Number.MAX_SAFE_INTEGER, { ...record, stream: 'x'.repeat(MAX_STREAM_NAME) })) <= SLOT - HEAD;
  }

  /** Writes `record` durably (the other slot, then fdatasync); one write at a time. */
  async write(record: PositionRecord): Promise<void> {
    const body = Buffer.from(encodeRecord(this.#counter + 1, { ...record, stream: this.#stream }));
    if (body.length > SLOT - HEAD) throw walnutError('WALNUT_INVALID_ARGUMENT', `a replica position record of ${body.length} bytes does not fit its slot`, { reason: 'position' });
    const out = Buffer.alloc(HEAD + body.length);
    out.writeUInt32BE(body.length, 0);
    xxh3_128Into(body, out, 4);
    body.copy(out, HEAD);
    const slot = 1 - this.#slot;
    const file = this.#file;
    if (file === null) throw walnutError('WALNUT_CLOSED', 'the replica position file is closed');
    await file.writev([out], slot * SLOT, 'data'); // all bytes or a failure, then fdatasync
    this.#slot = slot;
    this.#counter++;
  }

  close(): void {
    this.#file?.closeSync();
    this.#file = null;
  }
}

/** A record as stored: the intent's page list as runs (see the header). */
type StoredRecord = Omit<PositionRecord, 'intent'> & {
  intent: (Omit<NonNullable<PositionRecord['intent']>, 'pages'> & { pages?: number[] | 'all'; pageRuns?: number[] }) | null;
};

/** The JSON of a record: an intent's ascending page numbers as [gap, length] pairs, flattened. */
function encodeRecord(counter: number, record: PositionRecord): string {
  const intent = record.intent;
  if (intent === null || intent.pages === 'all') return JSON.stringify({ counter, ...record });
  const runs: number[] = [];
  let end = 0; // one past the last page of the run before
  for (let i = 0; i < intent.pages.length; ) {
    const first = intent.pages[i]!;
    let length = 1;
    while (i + length < intent.pages.length && intent.pages[i + length] === first + length) length++;
    runs.push(first - end, length);
    end = first + length;
    i += length;
  }
  const { pages: _pages, ...rest } = intent;
  return JSON.stringify({ counter, ...record, intent: { ...rest, pageRuns: runs } });
}

function decodeRecord(stored: StoredRecord): PositionRecord {
  const intent = stored.intent;
  if (intent === null || intent.pageRuns === undefined) return stored as PositionRecord;
  const pages: number[] = [];
  let end = 0;
  for (let i = 0; i + 1 < intent.pageRuns.length; i += 2) {
    const first = end + intent.pageRuns[i]!;
    for (let k = 0; k < intent.pageRuns[i + 1]!; k++) pages.push(first + k);
    end = first + intent.pageRuns[i + 1]!;
  }
  const { pageRuns: _runs, ...rest } = intent;
  return { ...stored, intent: { ...rest, pages } };
}
