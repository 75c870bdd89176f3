// ARKHEXP1 framing: the golden vector, every reader error reason from hand-made streams, the
// sink's refusals and its failed state, and a round trip through a real file and a stream.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';

import { BufferedWalSink, checkFramed, framedPayloads, MAX_RECORD, StreamMagic, WalStreamReader } from '../../lib/export/framing';
import { WalnutFile } from '../../lib/io/file';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const magic = Buffer.from('ARKHEXP1');
const be64 = (n: number | bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const readAll = (bytes: Uint8Array) => [...WalStreamReader.fromBuffer(bytes)].map((r) => Buffer.from(r).toString('hex'));

describe('framing', () => {
  it('golden vector: one record with payload 01 AB CD EF', async () => {
    const chunks: Buffer[] = [];
    const sink = new BufferedWalSink(new Writable({ write: (c, _e, cb) => (chunks.push(c), cb()) }));
    await sink.appendRecord(Uint8Array.from([0x01, 0xab, 0xcd, 0xef]));
    await sink.flush();
    expect(Buffer.concat(chunks).toString('hex')).toBe(Buffer.concat([magic, be64(4), Buffer.from([1, 0xab, 0xcd, 0xef])]).toString('hex'));
    expect(readAll(Buffer.concat(chunks))).toEqual(['01abcdef']);
    expect(sink.stats).toEqual({ records: 1, bytes: 20 });
  });

  it('checkFramed takes what framedPayloads takes and refuses what it refuses (a cut record, a wrong count, a zero-length or over-limit length, a high length word)', () => {
    const framed = Buffer.concat([be64(4), Buffer.from([1, 2, 3, 4]), be64(1), Buffer.from([9])]);
    expect(() => checkFramed(framed, 2)).not.toThrow();
    expect(framedPayloads(framed, 2).map((p) => Buffer.from(p).toString('hex'))).toEqual(['01020304', '09']);
    expect(() => checkFramed(new Uint8Array(0), 0)).not.toThrow();
    const refusals: [Uint8Array, number][] = [
      [framed, 1], // wrong count
      [framed, 3],
      [framed.subarray(0, framed.length - 1), 2], // the last record cut
      [framed.subarray(0, 15), 2], // a header cut
      [Buffer.concat([be64(0), Buffer.from([1])]), 1], // zero length
      [be64(MAX_RECORD + 1), 1], // over the limit
      [Buffer.concat([be64(2 ** 32 + 1), Buffer.from([1])]), 1], // a high word
    ];
    for (const [bytes, records] of refusals) {
      let viaPayloads: unknown = null;
      try {
        framedPayloads(bytes, records);
      } catch (e) {
        viaPayloads = e;
      }
      let viaCheck: unknown = null;
      try {
        checkFramed(bytes, records);
      } catch (e) {
        viaCheck = e;
      }
      expect(viaPayloads).not.toBeNull();
      expect(viaCheck).not.toBeNull();
      const { code, reason } = viaPayloads as { code: string; reason?: string };
      expect(viaCheck).toMatchObject({ code, reason });
    }
  });

  it('recognizes only ARKHEXP1', () => {
    expect(StreamMagic.recognize(magic)).toBe(StreamMagic.V1);
    for (const other of ['ARKHEXP2', 'ARKHEWAL', '\0\0\0\0\0\0\0\0', 'arkhexp1']) expect(StreamMagic.recognize(Buffer.from(other, 'latin1'))).toBeNull();
  });

  it('reports every error reason from hand-made streams', () => {
    for (let n = 0; n < 8; n++) expectWalnutError(() => readAll(magic.subarray(0, n)), 'WALNUT_INVALID_FRAMING', { reason: 'HeaderMissing' });
    expectWalnutError(() => readAll(Buffer.from('ARKHEXP2')), 'WALNUT_INVALID_FRAMING', { reason: 'UnsupportedStreamVersion' });
    expectWalnutError(() => readAll(Buffer.concat([magic, be64(0)])), 'WALNUT_INVALID_FRAMING', { reason: 'ZeroLength' });
    expectWalnutError(() => readAll(Buffer.concat([magic, be64(MAX_RECORD + 1)])), 'WALNUT_INVALID_FRAMING', { reason: 'LengthExceedsMax' });
    expectWalnutError(() => readAll(Buffer.concat([magic, be64(2n ** 63n)])), 'WALNUT_INVALID_FRAMING', { reason: 'LengthExceedsMax' });
    for (let n = 1; n < 8; n++) expectWalnutError(() => readAll(Buffer.concat([magic, be64(4).subarray(0, n)])), 'WALNUT_INVALID_FRAMING', { reason: 'Truncated' });
    expectWalnutError(() => readAll(Buffer.concat([magic, be64(4), Buffer.from([1, 2, 3])])), 'WALNUT_INVALID_FRAMING', { reason: 'Truncated' });
    // a clean end exactly between records
    expect(readAll(magic)).toEqual([]);
    expect(readAll(Buffer.concat([magic, be64(1), Buffer.from([7]), be64(2), Buffer.from([8, 9])]))).toEqual(['07', '0809']);
  });

  it('delivers the records before a broken one, then the error', () => {
    const stream = Buffer.concat([magic, be64(1), Buffer.from([7]), be64(0)]);
    const it = WalStreamReader.fromBuffer(stream);
    expect(Buffer.from(it.next().value as Uint8Array).toString('hex')).toBe('07');
    expectWalnutError(() => it.next(), 'WALNUT_INVALID_FRAMING', { reason: 'ZeroLength' });
  });

  it('the sink refuses zero-length and over-limit records before writing anything', async () => {
    let written = 0;
    const sink = new BufferedWalSink(new Writable({ write: (c, _e, cb) => ((written += c.length), cb()) }));
    await expectRejectsWalnut(sink.appendRecord(new Uint8Array(0)), 'WALNUT_INVALID_FRAMING', { reason: 'ZeroLength' });
    await expectRejectsWalnut(sink.appendRecord(new Uint8Array(MAX_RECORD + 1)), 'WALNUT_INVALID_FRAMING', { reason: 'LengthExceedsMax' });
    await sink.flush();
    expect(written).toBe(0);
    await sink.appendRecord(new Uint8Array(MAX_RECORD)); // the limit itself is fine
    await sink.flush();
    expect(written).toBe(8 + 8 + MAX_RECORD);
  });

  it('a failed flush leaves the sink failed: no retry can duplicate or lose bytes', async () => {
    let calls = 0;
    const sink = new BufferedWalSink(new Writable({ write: (_c, _e, cb) => cb(++calls === 2 ? new Error('disk gone') : null) }));
    await sink.appendRecord(Uint8Array.from([1]));
    await expectRejectsWalnut(sink.flush(), 'WALNUT_IO');
    await expectRejectsWalnut(sink.appendRecord(Uint8Array.from([2])), 'WALNUT_FAILED');
    await expectRejectsWalnut(sink.flush(), 'WALNUT_FAILED');
  });

  it('a stream destroyed before or during a flush (a client that went away) fails the flush instead of waiting forever', async () => {
    const gone = new PassThrough();
    gone.destroy();
    const early = new BufferedWalSink(gone);
    await early.appendRecord(Uint8Array.from([1]));
    await expectRejectsWalnut(early.flush(), 'WALNUT_IO');

    const unread = new PassThrough({ highWaterMark: 16 }); // nobody reads: the flush waits for 'drain'
    const late = new BufferedWalSink(unread);
    await late.appendRecord(new Uint8Array(1024));
    const flushing = late.flush();
    setImmediate(() => unread.destroy());
    await expectRejectsWalnut(flushing, 'WALNUT_IO');
    await expectRejectsWalnut(late.flush(), 'WALNUT_FAILED');
  });

  it('round-trips many records through a walnut file and through a chunked stream', async () => {
    const file = await WalnutFile.open(path.join(dir, 'records.ark'), { create: true, truncate: true });
    const sink = new BufferedWalSink(file, { bufferBytes: 1000 });
    const payloads = Array.from({ length: 300 }, (_, i) => Buffer.alloc(1 + ((i * 37) % 900), i & 0xff));
    for (const p of payloads) await sink.appendRecord(p);
    await sink.flush();
    await file.close();
    const bytes = fs.readFileSync(path.join(dir, 'records.ark'));
    expect(readAll(bytes)).toEqual(payloads.map((p) => p.toString('hex')));
    const pass = new PassThrough();
    for (let i = 0; i < bytes.length; i += 97) pass.write(bytes.subarray(i, i + 97));
    pass.end();
    const got: string[] = [];
    for await (const r of WalStreamReader.from(pass)) got.push(Buffer.from(r).toString('hex'));
    expect(got).toEqual(payloads.map((p) => p.toString('hex')));
  });

  it('reads a stream file into reused buffers: same records and errors as the stream reader, reclaiming before each reuse', async () => {
    // small reads: records straddle reads, one is larger than a read buffer, the buffers are reused
    const payloads = [...Array.from({ length: 200 }, (_, i) => Buffer.alloc(1 + ((i * 53) % 700), i & 0xff)), Buffer.alloc(10_000, 7), Buffer.alloc(3, 9)];
    const bytes = Buffer.concat([magic, ...payloads.flatMap((p) => [be64(p.length), p])]);
    const fromFile = async (stream: Uint8Array): Promise<{ got: string[]; error: unknown; reclaims: number }> => {
      fs.writeFileSync(path.join(dir, 'pooled.ark'), stream);
      const file = await WalnutFile.open(path.join(dir, 'pooled.ark'), { readOnly: true });
      const got: string[] = [];
      let reclaims = 0;
      try {
        for await (const r of WalStreamReader.fromFile(file, async () => void reclaims++, 1024)) got.push(Buffer.from(r).toString('hex'));
        return { got, error: null, reclaims };
      } catch (e) {
        return { got, error: e, reclaims };
      } finally {
        await file.close();
      }
    };
    const whole = await fromFile(bytes);
    expect(whole.error).toBeNull();
    expect(whole.got).toEqual(payloads.map((p) => p.toString('hex')));
    expect(whole.reclaims).toBeGreaterThan(10);
    const cuts = [0, 5, 8, 12, 16, 17, ...Array.from({ length: 40 }, (_, i) => Math.floor((bytes.length * (i + 1)) / 41)), bytes.length - 1];
    for (const cut of cuts) {
      const stream = bytes.subarray(0, cut);
      const expected: string[] = [];
      let expectedError: unknown = null;
      try {
        for (const r of WalStreamReader.fromBuffer(stream)) expected.push(Buffer.from(r).toString('hex'));
      } catch (e) {
        expectedError = e;
      }
      const r = await fromFile(stream);
      expect(r.got).toEqual(expected);
      expect((r.error as { reason?: string } | null)?.reason).toBe((expectedError as { reason?: string } | null)?.reason);
    }
    const bad = Buffer.from(bytes);
    bad.writeBigUInt64BE(BigInt(MAX_RECORD + 1), 8 + 8 + 1 + 8 + 54); // the third record's length
    const r = await fromFile(bad);
    expect(r.got).toHaveLength(2);
    expectWalnutError(() => { throw r.error; }, 'WALNUT_INVALID_FRAMING', { reason: 'LengthExceedsMax' });
  });
});

// A file sink has no fsync; it tells the kernel to write the stream back once every MiB written,
// however small its flushes (a follow export flushes once per pass, 64-256 KiB beside 64
// committers). It did so only for a single flush of 1 MiB or more, so a follow stream waited for
// the kernel's periodic writeback (up to 30 s behind, in bursts of many MiB in front of the
// writers' fsyncs). The hint's calls are counted on the real addon call (spied, called through).
describe('BufferedWalSink writeback of a file target', () => {
  it('starts writeback once every MiB written, over the bytes written since, whatever the flush sizes', async () => {
    const { nativeExportIo } = await import('../../lib/native');
    const { vi } = await import('vitest');
    const calls: [number, number][] = [];
    const real = nativeExportIo.startWriteback;
    const spy = vi.spyOn(nativeExportIo, 'startWriteback').mockImplementation((file, offset, length) => {
      calls.push([offset, length]);
      return real.call(nativeExportIo, file, offset, length);
    });
    const p = path.join(dir, 'writeback.ark');
    const file = await WalnutFile.open(p, { create: true, truncate: true });
    try {
      const sink = new BufferedWalSink(file);
      const payload = Buffer.alloc(100 * 1024 - 8, 7);
      for (let i = 0; i < 25; i++) {
        await sink.appendRecord(payload);
        await sink.flush(); // 100 KiB a flush, as a follow export's passes
      }
      const size = fs.statSync(p).size;
      expect(size).toBe(8 + 25 * 100 * 1024);
      expect(calls.length, 'writeback hints for 2.4 MiB written in 100 KiB flushes').toBe(2);
      // contiguous from the start, each at least a MiB
      let at = 0;
      for (const [offset, length] of calls) {
        expect(offset).toBe(at);
        expect(length).toBeGreaterThanOrEqual(1 << 20);
        at = offset + length;
      }
    } finally {
      spy.mockRestore();
      await file.close();
    }
  });
});
