// The export's native paths (#18 part 3): the base image read, framed and hashed by the addon
// (native/base_image.h) and sent through each kind of sink; the restore's coalesced page writes
// (lib/export/page-writer.ts). Edges: page sizes 512 and 65536, a 1-page database, sizes that
// are no multiple of a record or a chunk, pages in the WAL, writers changing the database while
// the base image is read, and bad arguments to the native functions.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';

import { Xxh3Stream } from '../../lib/checksum';
import { open } from '../../lib/commit/store';
import { BASE_RECORD_PAGES } from '../../lib/export/base-reader';
import { hashBytes } from '../../lib/export/exporter';
import { BufferedWalSink, MAX_RECORD, WalStreamReader, type WalRecordSink } from '../../lib/export/framing';
import { PageWriter } from '../../lib/export/page-writer';
import { decodeRecord, encodeBasePagesRecord } from '../../lib/export/records';
import { restore } from '../../lib/export/restore';
import { nativeHandleOf, WalnutFile } from '../../lib/io/file';
import { nativeExportIo } from '../../lib/native';
import { SqlitePeer } from '../helpers/children';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { framedStream } from '../helpers/export-stream';
import { Database, sqliteWritesWal } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;

/** The base image of an export stream: its pages (checked against BASE_END) and its records' page counts. */
function baseOf(bytes: Uint8Array): { pages: Buffer; counts: number[]; dbSize: number } {
  const parts: Uint8Array[] = [];
  const counts: number[] = [];
  const hash = new Xxh3Stream();
  for (const payload of WalStreamReader.fromBuffer(bytes)) {
    const rec = decodeRecord(payload);
    if (rec.kind === 'basePages') {
      expect(rec.firstPgno).toBe(1 + counts.reduce((a, b) => a + b, 0));
      parts.push(rec.pages);
      counts.push(rec.count);
      hash.update(rec.pages);
    } else if (rec.kind === 'baseEnd') {
      expect(Buffer.from(rec.hash)).toEqual(Buffer.from(hashBytes(hash)));
      return { pages: Buffer.concat(parts), counts, dbSize: rec.dbSize };
    }
  }
  throw new Error('no BASE_END');
}

/** The export of `db` through a file sink, a Writable and a record sink: the three streams' bytes. */
async function exportThreeWays(db: string): Promise<Buffer[]> {
  const store = await open(db);
  try {
    const file = path.join(dir, `three${n++}.ark`);
    const sink = await WalnutFile.open(file, { create: true, truncate: true });
    await store.exportTo(sink).done;
    await sink.close();
    const chunks: Buffer[] = [];
    const writable = new PassThrough();
    writable.on('data', (c: Buffer) => chunks.push(c));
    await store.exportTo(writable).done;
    const payloads: Uint8Array[] = [];
    const recordSink: WalRecordSink = { appendRecord: async (p) => void payloads.push(p), flush: async () => undefined };
    await store.exportTo(recordSink).done;
    return [fs.readFileSync(file), Buffer.concat(chunks), framedStream(payloads)];
  } finally {
    await store.close();
  }
}

function rowsOf(p: string) {
  const db = new Database(p, { readonly: true });
  try {
    return { rows: db.prepare('SELECT id, hex(v) AS v FROM t ORDER BY id').all(), check: db.pragma('integrity_check', { simple: true }) };
  } finally {
    db.close();
  }
}

/**
 * A database whose newest pages are in its WAL: `rows` rows checkpointed into the file, then in
 * the WAL every third row updated and `grow` rows more (pages beyond the file). Returns the
 * database and SQLite's own image of it (serialize()).
 */
function databaseWithWal(pageSize: number, rows: number, rowBytes: number, grow: number): { db: string; image: Buffer } {
  let image: Buffer = Buffer.alloc(0);
  const copy = sqliteWritesWal(dir, `wal${n++}`, pageSize, (db) => {
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
    const ins = db.prepare('INSERT INTO t(v) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < rows; i++) ins.run(Buffer.alloc(rowBytes, i & 0xff));
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.exec(`UPDATE t SET v = zeroblob(${Math.max(1, rowBytes >> 1)}) WHERE id % 3 = 0`);
    db.transaction(() => {
      for (let i = 0; i < grow; i++) ins.run(Buffer.alloc(rowBytes, 0xee));
    })();
    image = db.serialize();
  });
  return { db: copy.db, image };
}

describe('base image read natively', () => {
  // pages per chunk: 512 -> 16,384; 4096 -> 2,048; 65536 -> 255 (a record of 256 would pass 16 MiB).
  // Three chunks or more where they are cheap: the reader reuses two buffers in turn.
  for (const [pageSize, rows, rowBytes, grow] of [[512, 17_000, 380, 300], [4096, 9_000, 2_000, 650], [65536, 520, 60_000, 40]] as const) {
    it(`page size ${pageSize}: every sink gets SQLite's image, in records of ${Math.min(256, Math.floor((MAX_RECORD - 9) / pageSize))} pages; the restore equals the source`, async () => {
      const { db, image } = databaseWithWal(pageSize, rows, rowBytes, grow);
      const streams = await exportThreeWays(db);
      const perRecord = Math.min(BASE_RECORD_PAGES, Math.floor((MAX_RECORD - 9) / pageSize));
      const dbSize = image.length / pageSize;
      expect(dbSize % perRecord).not.toBe(0); // the last record is short...
      expect(dbSize).toBeGreaterThan(Math.floor((8 << 20) / (perRecord * pageSize)) * perRecord); // ...and there is more than one chunk
      for (const bytes of streams) {
        const base = baseOf(bytes);
        expect(base.dbSize).toBe(dbSize);
        expect(base.pages.equals(image)).toBe(true);
        expect(base.counts.slice(0, -1).every((c) => c === perRecord)).toBe(true);
        expect(base.counts.at(-1)).toBe(dbSize % perRecord);
      }
      // the first BASE_PAGES record is exactly what the JS codec makes of those pages
      const first = [...WalStreamReader.fromBuffer(streams[0]!)].find((p) => decodeRecord(p).kind === 'basePages')!;
      const pages = Array.from({ length: perRecord }, (_, i) => image.subarray(i * pageSize, (i + 1) * pageSize));
      expect(Buffer.from(first).equals(Buffer.from(encodeBasePagesRecord(1, pages)))).toBe(true);
      const target = path.join(dir, `restored${n++}.db`);
      const r = await restore(streams[0]!, target);
      expect(r).toMatchObject({ dbPages: dbSize, stoppedBy: null });
      expect(rowsOf(target)).toEqual(rowsOf(db));
      expect(fs.readFileSync(target).equals(image)).toBe(true);
    });
  }

  it('a 1-page database (page 1 in the file, then in the WAL)', async () => {
    const file = path.join(dir, `one${n++}.db`);
    const s = new Database(file);
    s.pragma('journal_mode = WAL');
    s.close();
    expect(fs.statSync(file).size).toBe(4096);
    for (const step of ['file', 'wal'] as const) {
      if (step === 'wal') {
        const writer = await open(file, { keepWal: true });
        const snap = await writer.snapshot();
        const page1 = await snap.read(1);
        snap.release();
        page1[100] = 1; // an unused byte of the header area SQLite ignores: a page-1 frame in the WAL
        await writer.commit([{ pgno: 1, data: page1 }]);
        await writer.close();
      }
      // reopened, the WAL is recovered: its newest state is the oldest an export can rebuild
      // (the base image), so page 1 comes from the WAL
      const store = await open(file, { keepWal: true });
      const out = path.join(dir, `one${n++}.ark`);
      const sink = await WalnutFile.open(out, { create: true, truncate: true });
      const stats = await store.exportTo(sink).done;
      await sink.close();
      const snap = await store.snapshot();
      const expected = await snap.read(1);
      snap.release();
      await store.close();
      expect(stats.basePages).toBe(1);
      const base = baseOf(fs.readFileSync(out));
      expect(base.counts).toEqual([1]);
      expect(base.pages.equals(expected)).toBe(true);
    }
  });

  it('writers that grow, shrink and checkpoint the database while the base image is read do not change it: it is the snapshot the export began with', async () => {
    const file = path.join(dir, `moving${n++}.db`);
    const s = new Database(file);
    s.pragma('journal_mode = WAL');
    s.pragma('wal_autocheckpoint = 0');
    s.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
    const ins = s.prepare('INSERT INTO t(v) VALUES (?)');
    s.transaction(() => {
      for (let i = 0; i < 8000; i++) ins.run(Buffer.alloc(3000, i & 0xff));
    })();
    s.pragma('wal_checkpoint(TRUNCATE)');
    s.exec('UPDATE t SET v = zeroblob(100) WHERE id % 4 = 0'); // in the WAL: the file has the old pages
    const image = s.serialize();
    const peer = new SqlitePeer(file); // another process, writing while the export waits on its sink
    await peer.pragma('wal_autocheckpoint = 0');
    s.close(); // the peer keeps the database (and its WAL) open

    const store = await open(file);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const payloads: Uint8Array[] = [];
    let firstChunk: () => void = () => undefined;
    const started = new Promise<void>((resolve) => (firstChunk = resolve));
    const slowSink: WalRecordSink = {
      appendRecord: async (p) => {
        payloads.push(p);
        if (payloads.length === 1) {
          firstChunk();
          await gate; // the rest of the base image is read after the writers below
        }
      },
      flush: async () => undefined,
    };
    const handle = store.exportTo(slowSink);
    await started;
    await peer.exec(`INSERT INTO t(v) SELECT randomblob(3000) FROM t LIMIT 3000`); // grows
    await peer.pragma('wal_checkpoint(PASSIVE)'); // copies what the export's snapshot allows (into the database file)
    await peer.exec('DELETE FROM t WHERE id > 1000');
    await peer.exec('VACUUM'); // shrinks
    await peer.pragma('wal_checkpoint(PASSIVE)');
    await peer.exec(`UPDATE t SET v = randomblob(3000) WHERE id % 2 = 1`);
    release();
    await handle.done;
    await store.close();
    await peer.close();
    const base = baseOf(framedStream(payloads));
    expect(base.dbSize).toBe(image.length / 4096);
    expect(base.pages.equals(image)).toBe(true);
  });
});

describe('native export functions refuse bad arguments with a WalnutError', () => {
  it('BaseImageReader.readChunk, writeChunk, digest and startWriteback', async () => {
    const db = path.join(dir, `args${n++}.db`);
    fs.writeFileSync(db, Buffer.alloc(8 * 4096, 7));
    const a = await WalnutFile.open(db, { lane: 'background' });
    const b = await WalnutFile.open(db, { lane: 'background' });
    const mainLane = await WalnutFile.open(db);
    const closed = await WalnutFile.open(db, { lane: 'background' });
    await closed.close();
    const [fa, fb, fm, fc] = [a, b, mainLane, closed].map(nativeHandleOf) as [never, never, never, never];
    const reader = new nativeExportIo.BaseImageReader();
    const out = Buffer.alloc(17 + 8 * 4096);
    const call = (args: unknown[]) => () => (reader.readChunk as (...x: unknown[]) => unknown)(...args);
    const good: unknown[] = [fa, fb, out, 4096, 256, 1, 8, 8, null, false];
    const bad: [number, unknown][] = [
      [0, {}], [0, null], [1, 'wal'], [1, fc], [1, fm], [2, 'out'], [2, new Uint32Array(10)], [2, Buffer.alloc(100)],
      [3, 1000], [3, 256], [3, 131072], [3, -4096], [3, Number.NaN], [3, '4096'],
      [4, 0], [4, 4096], [4, 2 ** 32],
      [5, 0], [5, 2 ** 32 - 4], [5, 1.5],
      [6, 0], [6, 2 ** 40],
      [7, -1],
      [8, new Uint32Array(7)], [8, new Uint32Array(9)], [8, [1, 2, 3, 4, 5, 6, 7, 8]], [8, Buffer.alloc(32)],
    ];
    for (const [at, value] of bad) {
      const args = good.slice();
      args[at] = value;
      expectWalnutError(call(args), at <= 1 && value === fc ? 'WALNUT_CLOSED' : 'WALNUT_INVALID_ARGUMENT');
    }
    // a good call, and what may not happen while it runs
    const running = (reader.readChunk as (...x: unknown[]) => Promise<{ bytes: number }>)(...good);
    expectWalnutError(call(good), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => reader.digest(), 'WALNUT_INVALID_ARGUMENT');
    expect((await running).bytes).toBe(out.length);
    expect(reader.digest()).toHaveLength(16);
    // a WAL frame beyond the end of the "WAL" is reported, and the reader refuses to go on
    const frames = new Uint32Array(8).fill(0);
    frames[3] = 1000;
    const missing = await (reader.readChunk as (...x: unknown[]) => Promise<{ missingFrame: number }>)(fa, fb, out, 4096, 256, 9, 8, 16, frames, false);
    expect(missing.missingFrame).toBe(1000);
    expectWalnutError(call(good), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => reader.digest(), 'WALNUT_INVALID_ARGUMENT');

    // writeChunk: the same checks, a sink file and a position; it writes what readChunk fills
    const sinkFile = await WalnutFile.open(path.join(dir, `sink${n++}`), { create: true });
    const fs_ = nativeHandleOf(sinkFile) as never;
    const writer = new nativeExportIo.BaseImageReader();
    const write = (args: unknown[]) => () => (writer.writeChunk as (...x: unknown[]) => unknown)(...args);
    const goodWrite: unknown[] = [fa, fb, fs_, 4096, 256, 1, 8, 8, null, false, 5];
    for (const [at, value] of [...bad.filter(([i]) => i !== 2), [2, 'sink'], [2, fc], [2, out], [10, -1], [10, 2 ** 53], [10, 'x'], [10, undefined]] as [number, unknown][]) {
      const args = goodWrite.slice();
      args[at] = value;
      expectWalnutError(write(args), value === fc ? 'WALNUT_CLOSED' : 'WALNUT_INVALID_ARGUMENT');
    }
    const fresh = new nativeExportIo.BaseImageReader();
    await fresh.readChunk(fa, fb, out, 4096, 256, 1, 8, 8, null, false);
    const wrote = await (writer.writeChunk as (...x: unknown[]) => Promise<{ bytes: number }>)(...goodWrite);
    expect(wrote.bytes).toBe(out.length);
    expect(fs.readFileSync(path.join(dir, `sink${n - 1}`)).subarray(5).equals(out)).toBe(true);
    expect(Buffer.from(writer.digest())).toEqual(Buffer.from(fresh.digest()));
    await sinkFile.close();

    const wb = nativeExportIo.startWriteback as (...x: unknown[]) => Promise<void>;
    for (const args of [[], [{}, 0, 1], [fc, 0, 1], [fa, -1, 1], [fa, 0, 2 ** 53], [fa, 'x', 1]]) {
      expectWalnutError(() => wb(...args), args[0] === fc ? 'WALNUT_CLOSED' : 'WALNUT_INVALID_ARGUMENT');
    }
    await wb(fa, 0, 4096); // a read-only use of it is harmless
    for (const f of [a, b, mainLane]) await f.close();
  });

  it('a database file shorter than the snapshot thought reads as zeros; a page trailer that does not match is WALNUT_CORRUPT', async () => {
    const db = path.join(dir, `short${n++}.db`);
    const page = (k: number) => Buffer.alloc(512, k);
    fs.writeFileSync(db, Buffer.concat([page(1), page(2), page(3)]));
    const f = await WalnutFile.open(db, { lane: 'background' });
    const h = nativeHandleOf(f);
    const reader = new nativeExportIo.BaseImageReader();
    const out = Buffer.alloc(17 + 5 * 512, 0xff);
    const r = await reader.readChunk(h, h, out, 512, 256, 1, 5, 5, null, false);
    expect(r).toEqual({ bytes: out.length, missingFrame: 0, badTrailerPgno: 0 });
    expect(out.subarray(0, 17).toString('hex')).toBe(`${(9 + 5 * 512).toString(16).padStart(16, '0')}03${'00000001'}${'00000005'}`);
    expect(out.subarray(17).equals(Buffer.concat([page(1), page(2), page(3), Buffer.alloc(1024)]))).toBe(true);
    const bad = await new nativeExportIo.BaseImageReader().readChunk(h, h, out, 512, 256, 1, 3, 3, null, true);
    expect(bad.badTrailerPgno).toBe(1); // 16 bytes of 0x01 are no XXH3-128 of the rest
    await f.close();
  });

  it('BufferedWalSink.appendFramed refuses records that do not fit, before anything is buffered', async () => {
    const chunks: Buffer[] = [];
    const target = new PassThrough().on('data', (c: Buffer) => chunks.push(c));
    const sink = new BufferedWalSink(target);
    const one = framedStream([Buffer.from([1, 2, 3])]).subarray(8);
    for (const [framed, records] of [[one, 2], [one.subarray(0, 10), 1], [Buffer.alloc(8), 1], [Buffer.from('not a record'), 1], [framedStream([Buffer.alloc(MAX_RECORD + 1)]).subarray(8), 1]] as const) {
      await expectRejectsWalnut(sink.appendFramed(framed, records), framed.length === 8 ? 'WALNUT_INVALID_FRAMING' : framed.length > MAX_RECORD ? 'WALNUT_INVALID_FRAMING' : 'WALNUT_INVALID_ARGUMENT');
    }
    await sink.appendFramed(one, 1);
    await sink.flush();
    expect(Buffer.concat(chunks).equals(framedStream([Buffer.from([1, 2, 3])]))).toBe(true);
  });
});

describe('PageWriter: the restore\'s coalesced writes', () => {
  it('the file ends as if every write and truncation were applied in order', async () => {
    const file = path.join(dir, `pw${n++}.db`);
    const ps = 512;
    const out = await WalnutFile.open(file, { create: true, exclusive: true });
    const model: Buffer[] = [];
    const w = new PageWriter(out, ps);
    const pages = (first: number, count: number, fill: number) => {
      const b = Buffer.alloc(count * ps);
      for (let i = 0; i < count; i++) b.fill((fill + i) & 0xff, i * ps, (i + 1) * ps);
      for (let i = 0; i < count; i++) model[first - 1 + i] = b.subarray(i * ps, (i + 1) * ps);
      return b;
    };
    const truncate = (size: number) => {
      model.length = size; // cut, or grown with holes (zeros)
      w.truncate(size);
    };
    let x = 7;
    const rnd = (m: number) => (x = (x * 1103515245 + 12345) % 2147483648) % m;
    await w.write(1, pages(1, 20_000, 1)); // a base image: one sequential run, several batches
    truncate(20_000);
    for (let c = 0; c < 300; c++) {
      const first = 1 + rnd(21_000);
      await w.write(first, pages(first, 1 + rnd(40), c));
      if (c % 17 === 0) truncate(1 + rnd(22_000)); // cuts, and grows back: pages past a cut read as zeros
      if (c % 50 === 0) await w.write(3, pages(3, 1, 200 + c)); // the same page again
    }
    truncate(Math.max(model.length, 21_500));
    await w.finish();
    await out.close();
    const want = Buffer.concat(Array.from({ length: model.length }, (_, i) => model[i] ?? Buffer.alloc(ps)));
    expect(fs.readFileSync(file).equals(want)).toBe(true);
  });
});
