// Export streams for tests: built by hand, or exported from a database; a sink that can stall.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';

import { WalStreamReader } from '../../lib/export/framing';
import type { WalRecordSink } from '../../lib/export/framing';
import { KIND } from '../../lib/export/records';
import { createExportStream } from '../../lib/export/stream';
import { Database } from './sqlite';
import { until, WAIT_MS } from './until';

/** The whole ARKHEXP1 export stream of `db` (createExportStream, read to its end). */
export async function streamOf(db: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of createExportStream(db)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** A WAL-mode database SQLite made in `dir` as `name`.db (`pageSize`-byte pages): t(id, w, v), empty, no -wal left; returns its path. */
export function newWriterDb(dir: string, name: string, pageSize = 4096): string {
  const p = path.join(dir, `${name}.db`);
  const db = new Database(p);
  db.pragma(`page_size = ${pageSize}`);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
  db.close();
  return p;
}

/**
 * Waits until the export has written its first byte to `file`: its base snapshot is taken
 * (Exporter.run's beginOldestRead comes before any record). Writers started before that race it:
 * the commits a checkpoint copies before the snapshot are in the base image, not in log records,
 * and the stream's count of commits comes up short of the writers' ("705 of 980" under the whole
 * suite's load; no row lost, the restore held them). Start writers only after this.
 */
export async function snapshotTaken(file: string): Promise<void> {
  await until(() => (fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0) > 0, WAIT_MS, () => `${file} is still empty: the export has not taken its snapshot`);
}

/** The export stream of a WAL-mode database SQLite made in `dir` as `name`.db: t(id, w, v) holding `rows` rows (w = 7, v 'restored <i>'). */
export async function exportOfRows(dir: string, name: string, rows: number): Promise<Buffer> {
  const db = path.join(dir, `${name}.db`);
  const s = new Database(db);
  try {
    s.pragma('journal_mode = WAL');
    s.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
    const insert = s.prepare('INSERT INTO t(w, v) VALUES (7, ?)');
    for (let i = 0; i < rows; i++) insert.run(`restored ${i}`);
  } finally {
    s.close();
  }
  return streamOf(db);
}

/**
 * Commit records in the stream file `ark` (or in those bytes) written so far (a `walnut export
 * --follow` running: a record being written is counted next time).
 */
export function commitsInStreamFile(ark: string | Buffer): number {
  let commits = 0;
  try {
    for (const p of WalStreamReader.fromBuffer(typeof ark === 'string' ? fs.readFileSync(ark) : ark)) if (p[0] === KIND.COMMIT_META) commits++;
  } catch {
    // the last record is not all there yet
  }
  return commits;
}

/** Frames a list of payloads as an ARKHEXP1 stream. */
export function framedStream(payloads: Uint8Array[]): Buffer {
  const parts: Buffer[] = [Buffer.from('ARKHEXP1')];
  for (const p of payloads) {
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(p.length));
    parts.push(len, Buffer.from(p));
  }
  return Buffer.concat(parts);
}

/**
 * A Writable sink for an export that keeps what it was given (`chunks`) and can play a peer
 * that stops reading: once `stall()`ed its write callbacks wait until `release()`; each callback
 * comes `delayMs` later (0: at the next turn of the event loop; more: a slow peer).
 */
export function stallableSink(delayMs = 0): { w: Writable; chunks: Buffer[]; stall(): void; release(): void } {
  const chunks: Buffer[] = [];
  const waiting: (() => void)[] = [];
  let stalled = false;
  const w = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      const done = (): void => void (delayMs === 0 ? setImmediate(cb) : setTimeout(cb, delayMs));
      if (stalled) waiting.push(done);
      else done();
    },
  });
  return {
    w,
    chunks,
    stall: () => void (stalled = true),
    release() {
      stalled = false;
      for (const f of waiting.splice(0)) f();
    },
  };
}

/**
 * A WalRecordSink that takes records until hold() and from then waits in its next records call
 * until release(); counts COMMIT_META records, records calls and flushes (a pass's end, idle
 * passes too: only records wait).
 */
export function holdableSink(): {
  sink: WalRecordSink;
  commits(): number;
  flushes(): number;
  calls(): number;
  hold(): void;
  release(): void;
} {
  let gate: Promise<void> | null = null;
  let open: (() => void) | null = null;
  let commits = 0;
  let flushes = 0;
  let calls = 0;
  const take = async (payloads: readonly Uint8Array[]): Promise<void> => {
    calls++;
    for (const p of payloads) if (p[0] === KIND.COMMIT_META) commits++;
    if (gate !== null) await gate;
  };
  return {
    sink: {
      appendRecord: (p) => take([p]),
      appendRecords: (ps) => take(ps),
      flush: async () => void flushes++,
    },
    commits: () => commits,
    flushes: () => flushes,
    calls: () => calls,
    hold: () => void (gate = new Promise<void>((resolve) => (open = resolve))),
    release: () => {
      gate = null;
      open?.();
    },
  };
}
