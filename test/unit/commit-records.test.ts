// The native commit framer (native/commit_records.h, exportIo.CommitFramer) against the
// reference encoder (lib/export/commit-records.ts CommitRecordEncoder, framed as framing.ts
// frames records): the same bytes for random commits — page sizes, page counts, commit
// boundaries, runs that end inside a transaction, records split at framesPerRecord, commit
// sequences and times of several generations — from memory (frameBytes) and read from a WAL
// file (readFrames, into memory and written to a sink file); a read a hand-over overtook is
// dropped with the framer unchanged; every bad argument refused (WALNUT_INVALID_ARGUMENT).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

import { CommitRecordEncoder, commitRecordsBound, framesPerRecordOf } from '../../lib/export/commit-records';
import { WalStreamReader } from '../../lib/export/framing';
import { decodeRecord } from '../../lib/export/records';
import { nativeHandleOf, WalnutFile } from '../../lib/io/file';
import { nativeExportIo } from '../../lib/native';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const opened: WalnutFile[] = [];
afterAll(async () => {
  for (const f of opened) if (!f.closed) await f.close();
});

/** Frames of random pages; `commits[i]` nonzero makes frame i a commit frame (any byte of 4..7). */
function makeFrames(pageSize: number, commitSizes: number[], seed: number): Buffer {
  const frameSize = 24 + pageSize;
  const out = Buffer.alloc(commitSizes.length * frameSize);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  commitSizes.forEach((c, i) => out.writeUInt32BE(c >>> 0, i * frameSize + 4));
  return out;
}

/** The reference encoder's payloads, framed (u64 BE length, payload). */
function framed(payloads: Uint8Array[]): Buffer {
  const parts: Buffer[] = [];
  for (const p of payloads) {
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(p.length));
    parts.push(len, Buffer.from(p));
  }
  return Buffer.concat(parts);
}

/** A run of frames: page size, commit sizes (0 = not a commit), where runs end, records' split. */
const runs = fc.record({
  pageSize: fc.constantFrom(512, 1024, 4096, 8192, 65536),
  commits: fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.constant(1), fc.constant(0x100), fc.constant(0x01000000), fc.integer({ min: 1, max: 0xffffffff })), { minLength: 1, maxLength: 40 }),
  cuts: fc.array(fc.integer({ min: 1, max: 39 }), { maxLength: 6 }),
  perRecord: fc.oneof(fc.integer({ min: 1, max: 6 }), fc.constant(0)),
  lastSeq: fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constant(2 ** 53 - 100)),
  times: fc.array(fc.integer({ min: 0, max: 2 ** 45 }), { minLength: 8, maxLength: 8 }),
  seed: fc.integer(),
});

describe('native commit framer', () => {
  it('writes exactly the reference encoder\'s bytes for random commits, runs and generations (frameBytes)', () => {
    fc.assert(
      fc.property(runs, ({ pageSize, commits, cuts, perRecord, lastSeq, times, seed }) => {
        const frameSize = 24 + pageSize;
        const frames = makeFrames(pageSize, commits, seed);
        const framesPerRecord = perRecord === 0 ? framesPerRecordOf(pageSize) : perRecord;
        const bounds = [...new Set([0, ...cuts.filter((c) => c < commits.length), commits.length])].sort((a, b) => a - b);
        const native = new nativeExportIo.CommitFramer();
        const js = new CommitRecordEncoder();
        let seqNative = lastSeq;
        let seqJs = BigInt(lastSeq);
        for (let k = 0; k + 1 < bounds.length; k++) {
          const run = frames.subarray(bounds[k]! * frameSize, bounds[k + 1]! * frameSize);
          const time = times[k % times.length]!;
          const out = Buffer.alloc(commitRecordsBound(run.length / frameSize, pageSize) + 3, 0xee);
          const r = native.frameBytes(run, pageSize, framesPerRecord, seqNative, time, out);
          const ref = js.encode(run, pageSize, framesPerRecord, seqJs, BigInt(time));
          expect(out.subarray(0, r.bytes).equals(framed(ref.payloads))).toBe(true);
          expect(out.subarray(r.bytes).every((b) => b === 0xee)).toBe(true); // nothing past its records
          expect([r.records, r.commits]).toEqual([ref.payloads.length, ref.commits]);
          expect(native.inTransaction()).toBe(js.inTransaction);
          seqNative += r.commits;
          seqJs += BigInt(ref.commits);
        }
        expect(seqNative).toBe(lastSeq + commits.filter((c) => c !== 0).length);
      }),
      { numRuns: 300 },
    );
  });

  it('its records are what restore reads: a FRAMES record per transaction piece, then its COMMIT_META', () => {
    const pageSize = 1024;
    const frames = makeFrames(pageSize, [0, 0, 3, 4, 0, 5], 7);
    const framer = new nativeExportIo.CommitFramer();
    const out = Buffer.alloc(commitRecordsBound(6, pageSize));
    const r = framer.frameBytes(frames, pageSize, 2, 41, 1234, out);
    const stream = Buffer.concat([Buffer.from('ARKHEXP1'), out.subarray(0, r.bytes)]);
    const kinds = [...WalStreamReader.fromBuffer(stream)].map((p) => decodeRecord(p));
    expect(kinds.map((k) => k.kind)).toEqual(['frames', 'frames', 'commitMeta', 'frames', 'commitMeta', 'frames', 'commitMeta']);
    expect(kinds.filter((k) => k.kind === 'commitMeta').map((k) => (k as { seq: bigint }).seq)).toEqual([42n, 43n, 44n]);
  });

  it('reads the same records from a WAL file, into memory and into a sink file at its position', async () => {
    const pageSize = 4096;
    const frameSize = 24 + pageSize;
    const commitSizes = Array.from({ length: 300 }, (_, i) => (i % 7 === 3 || i % 11 === 0 ? i + 1 : 0));
    const frames = makeFrames(pageSize, commitSizes, 99);
    const walPath = path.join(dir, 'read.wal');
    fs.writeFileSync(walPath, Buffer.concat([Buffer.alloc(32, 0x77), frames]));
    const wal = await WalnutFile.open(walPath, { readOnly: true });
    const sink = await WalnutFile.open(path.join(dir, 'read.ark'), { create: true, truncate: true });
    opened.push(wal, sink);
    const ref = new CommitRecordEncoder();
    const intoMemory = new nativeExportIo.CommitFramer();
    const intoSink = new nativeExportIo.CommitFramer();
    const epoch = new Int32Array(1);
    const expected: Buffer[] = [];
    const memory: Buffer[] = [];
    let position = 100; // the sink's records go on after what it holds
    let seq = 10;
    for (const [first, count] of [[1, 50], [51, 1], [52, 120], [172, 129]] as const) {
      const run = frames.subarray((first - 1) * frameSize, (first - 1 + count) * frameSize);
      const e = ref.encode(run, pageSize, 3, BigInt(seq), 555n);
      expected.push(framed(e.payloads));
      const out = Buffer.alloc(commitRecordsBound(count, pageSize));
      const m = await intoMemory.readFrames(nativeHandleOf(wal), pageSize, 3, seq, 555, first, count, epoch, 0, out, null, 0);
      expect(m.dropped).toBe(false);
      expect(m.missingFrame).toBe(0);
      memory.push(out.subarray(0, m.bytes));
      const s = await intoSink.readFrames(nativeHandleOf(wal), pageSize, 3, seq, 555, first, count, null, 0, null, nativeHandleOf(sink), position);
      expect([s.bytes, s.records, s.commits]).toEqual([m.bytes, m.records, m.commits]);
      position += s.bytes;
      seq += m.commits;
    }
    const want = Buffer.concat(expected);
    expect(Buffer.concat(memory).equals(want)).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'read.ark')).subarray(100).equals(want)).toBe(true);
  });

  it('a read a hand-over overtook is dropped, nothing written, the framer unchanged; a frame past the file is missing', async () => {
    const pageSize = 512;
    const frames = makeFrames(pageSize, [0, 0, 9, 0], 3); // ends inside a transaction
    const walPath = path.join(dir, 'drop.wal');
    fs.writeFileSync(walPath, Buffer.concat([Buffer.alloc(32), frames]));
    const wal = await WalnutFile.open(walPath, { readOnly: true });
    const sinkPath = path.join(dir, 'drop.ark');
    const sink = await WalnutFile.open(sinkPath, { create: true, truncate: true });
    opened.push(wal, sink);
    const framer = new nativeExportIo.CommitFramer();
    const epoch = new Int32Array([5]);
    const dropped = await framer.readFrames(nativeHandleOf(wal), pageSize, 8, 0, 1, 1, 4, epoch, 4, null, nativeHandleOf(sink), 0);
    expect(dropped).toMatchObject({ dropped: true, bytes: 0, records: 0, commits: 0 });
    expect(fs.statSync(sinkPath).size).toBe(0);
    expect(framer.inTransaction()).toBe(false);
    const kept = await framer.readFrames(nativeHandleOf(wal), pageSize, 8, 0, 1, 1, 4, epoch, 5, null, nativeHandleOf(sink), 0);
    expect(kept).toMatchObject({ dropped: false, commits: 1, records: 3 });
    expect(framer.inTransaction()).toBe(true);
    const missing = await framer.readFrames(nativeHandleOf(wal), pageSize, 8, 1, 1, 4, 3, null, 0, Buffer.alloc(commitRecordsBound(3, pageSize)), null, 0);
    expect(missing).toMatchObject({ missingFrame: 5, bytes: 0 });
    expect(framer.inTransaction()).toBe(true); // unchanged by a read that found no frames
  });

  it('refuses every bad argument with WALNUT_INVALID_ARGUMENT, before a byte is written', async () => {
    const framer = new nativeExportIo.CommitFramer();
    const frames = makeFrames(1024, [1, 0, 2], 5);
    const out = Buffer.alloc(commitRecordsBound(3, 1024));
    const bad: [string, () => unknown][] = [
      ['page size', () => framer.frameBytes(frames, 1000, 1, 0, 0, out)],
      ['not whole frames', () => framer.frameBytes(frames.subarray(1), 1024, 1, 0, 0, out)],
      ['framesPerRecord 0', () => framer.frameBytes(frames, 1024, 0, 0, 0, out)],
      ['framesPerRecord past 16 MiB', () => framer.frameBytes(frames, 1024, framesPerRecordOf(1024) + 1, 0, 0, out)],
      ['out too small', () => framer.frameBytes(frames, 1024, 1, 0, 0, out.subarray(1))],
      ['overlapping', () => framer.frameBytes(out.subarray(0, 1048 * 3), 1024, 1, 0, 0, out)],
      ['lastSeq not an integer', () => framer.frameBytes(frames, 1024, 1, 1.5, 0, out)],
      ['frames not bytes', () => framer.frameBytes('x' as never, 1024, 1, 0, 0, out)],
    ];
    for (const [what, call] of bad) {
      out.fill(0xab);
      expectWalnutError(call, 'WALNUT_INVALID_ARGUMENT');
      expect(out.every((b) => b === 0xab), what).toBe(true);
    }
    const walPath = path.join(dir, 'args.wal');
    fs.writeFileSync(walPath, Buffer.concat([Buffer.alloc(32), frames]));
    const wal = await WalnutFile.open(walPath, { readOnly: true });
    opened.push(wal);
    const w = nativeHandleOf(wal);
    expectWalnutError(() => framer.readFrames(w, 1024, 1, 0, 0, 0, 1, null, 0, out, null, 0), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => framer.readFrames(w, 1024, 1, 0, 0, 1, 4, null, 0, out, null, 0), 'WALNUT_INVALID_ARGUMENT'); // out holds 3
    expectWalnutError(() => framer.readFrames(w, 1024, 1, 0, 0, 1, 1, new Uint32Array(1) as never, 0, out, null, 0), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => framer.readFrames(w, 1024, 1, 0, 0, 1, 1, null, 0, null, {} as never, 0), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => framer.readFrames(w, 1024, 1, 0, 0, 1, 1, null, 0, null, w, 2 ** 53), 'WALNUT_INVALID_ARGUMENT');
    // a closed sink file: WALNUT_CLOSED from the call itself (BufferedWalSink.appendDirect makes it the sink's WALNUT_IO)
    const closedSink = await WalnutFile.open(path.join(dir, 'closed.ark'), { create: true });
    await closedSink.close();
    expectWalnutError(() => framer.readFrames(w, 1024, 1, 0, 0, 1, 1, null, 0, null, nativeHandleOf(closedSink), 0), 'WALNUT_CLOSED');
    // a sink file that refuses the write (read-only: EBADF): WALNUT_IO, and the framer refuses
    // every later call (the sink may hold part of the records)
    const readOnlySink = await WalnutFile.open(walPath, { readOnly: true });
    opened.push(readOnlySink);
    const failing = new nativeExportIo.CommitFramer();
    const e = await expectRejectsWalnut(failing.readFrames(w, 1024, 1, 0, 0, 1, 3, null, 0, null, nativeHandleOf(readOnlySink), 0), 'WALNUT_IO');
    expect(e.message).toMatch(/Bad file descriptor/);
    expectWalnutError(() => failing.frameBytes(frames, 1024, 1, 0, 0, out), 'WALNUT_INVALID_ARGUMENT');
    // and the framer still works after refusals
    const r = framer.frameBytes(frames, 1024, 1, 0, 0, out);
    expect(r.commits).toBe(2);
    await expectRejectsWalnut(Promise.resolve().then(() => framer.frameBytes(frames, 1024, 1, 2 ** 53, 0, out)), 'WALNUT_INVALID_ARGUMENT');
  });
});
