// The restore's native base image (native/base_restore.h, #18 part 3): a stream file's
// BASE_PAGES records parsed, hashed and written by the addon. It must apply exactly the records
// the JavaScript path accepts and leave every other one to it, so a stream file restores exactly
// as the same bytes from memory do, cut or damaged anywhere. Also: the export's native count of
// commit frames (countCommits), restore's onProgress, and bad arguments to the native functions.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';

import { Xxh3Stream } from '../../lib/checksum';
import { open } from '../../lib/commit/store';
import { hashBytes } from '../../lib/export/exporter';
import { encodeBaseEndRecord, encodeBaseMetaRecord, encodeBasePagesRecord } from '../../lib/export/records';
import { restore } from '../../lib/export/restore';
import { nativeHandleOf, WalnutFile } from '../../lib/io/file';
import { nativeExportIo } from '../../lib/native';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { framedStream } from '../helpers/export-stream';
import { Database, sqliteWritesWal } from '../helpers/sqlite';
import { memoryTmpDir, tmpDir } from '../helpers/tmp';

const dir = tmpDir();
// the cut and damaged variants (hundreds of throwaway stream and database files) are in memory:
// their subject is what applyRun and restore accept, not the disk
const scratch = memoryTmpDir();
let n = 0;

const page = (size: number, k: number) => Buffer.alloc(size, k);

/** A BASE_PAGES payload with header fields as given (count and body need not agree). */
function rawBasePages(pgno: number, count: number, body: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head[0] = 0x03;
  head.writeUInt32BE(pgno, 1);
  head.writeUInt32BE(count, 5);
  return Buffer.concat([head, body]);
}

async function withFiles<T>(stream: Buffer, work: (s: WalnutFile, db: WalnutFile, dbPath: string) => Promise<T>): Promise<T> {
  const streamPath = path.join(scratch, `s${n}.ark`);
  const dbPath = path.join(scratch, `d${n++}.db`);
  fs.writeFileSync(streamPath, stream);
  const s = await WalnutFile.open(streamPath, { readOnly: true });
  const db = await WalnutFile.open(dbPath, { create: true });
  try {
    return await work(s, db, dbPath);
  } finally {
    await s.close();
    await db.close();
  }
}

/** The outcome of a restore: its result and the database's bytes, or the error's code and reason. */
async function outcome(source: Readable | Uint8Array, target: string): Promise<unknown> {
  try {
    const r = await restore(source, target, { force: true });
    return { r, bytes: fs.readFileSync(target).toString('base64') };
  } catch (e) {
    const err = e as { code?: string; reason?: string };
    return { code: err.code, reason: err.reason };
  }
}

describe('native base image of a restore', () => {
  it('applyRun applies the records the JavaScript path accepts, in one pass, and stops before the first it does not', async () => {
    const ps = 512;
    const good = [encodeBasePagesRecord(1, [page(ps, 1), page(ps, 2)]), encodeBasePagesRecord(3, [page(ps, 3)])];
    const goodBytes = 8 + 2 * (8 + 9) + 3 * ps; // where the third record begins
    const stops: [string, Uint8Array][] = [
      ['another kind', encodeBaseEndRecord(3, new Uint8Array(16))],
      ['a pgno out of order', encodeBasePagesRecord(5, [page(ps, 4)])],
      ['a pgno repeated', encodeBasePagesRecord(3, [page(ps, 4)])],
      ['another page size', encodeBasePagesRecord(4, [page(1024, 4)])],
      ['count 0', rawBasePages(4, 0, page(ps, 4))],
      ['a count that does not divide the pages', rawBasePages(4, 3, page(ps * 2, 4))],
      ['no pages', rawBasePages(4, 1, Buffer.alloc(0))],
      ['shorter than its header', Buffer.from([0x03, 0, 0, 0])],
      ['pgno + count past 2^32', rawBasePages(4, 0xffffffff, Buffer.alloc(0))],
    ];
    for (const [what, third] of stops) {
      const stream = framedStream([...good, third, encodeBasePagesRecord(4, [page(ps, 9)])]);
      await withFiles(stream, async (s, db, dbPath) => {
        const w = new nativeExportIo.BaseImageWriter();
        const r = await w.applyRun(nativeHandleOf(s), nativeHandleOf(db), 8, 1, 0, 1 << 30);
        expect(r, what).toEqual({ end: goodBytes, pages: 3, pageSize: ps, more: false });
        expect(fs.readFileSync(dbPath).equals(Buffer.concat([page(ps, 1), page(ps, 2), page(ps, 3)])), what).toBe(true);
        expect(Buffer.from(w.digest())).toEqual(Buffer.from(hashBytes(new Xxh3Stream().update(Buffer.concat([page(ps, 1), page(ps, 2), page(ps, 3)])))));
      });
    }
    // a first record whose page size is no SQLite page size is left to the JavaScript path
    await withFiles(framedStream([encodeBasePagesRecord(1, [page(500, 1)])]), async (s, db) => {
      const r = await new nativeExportIo.BaseImageWriter().applyRun(nativeHandleOf(s), nativeHandleOf(db), 8, 1, 0, 1 << 30);
      expect(r).toEqual({ end: 8, pages: 0, pageSize: 0, more: false });
    });
    // cut anywhere: the records whole before the cut are applied, never a part of one
    const whole = framedStream(good);
    for (let cut = 8; cut <= whole.length; cut++) {
      const complete = cut >= goodBytes ? 2 : cut >= 8 + 17 + 2 * ps ? 1 : 0;
      await withFiles(whole.subarray(0, cut), async (s, db) => {
        const r = await new nativeExportIo.BaseImageWriter().applyRun(nativeHandleOf(s), nativeHandleOf(db), 8, 1, 0, 1 << 30);
        expect(r.end, `cut at ${cut}`).toBe(complete === 2 ? goodBytes : complete === 1 ? 8 + 17 + 2 * ps : 8);
        expect(r.pages).toBe(complete === 2 ? 3 : complete === 1 ? 2 : 0);
      });
      if (cut > 40 && cut < whole.length - 40) cut += 37; // every byte near the record edges, a sample between
    }
    // maxBytes: the run stops after the record that passes it, and the next run goes on from there
    await withFiles(framedStream([...good, encodeBaseEndRecord(3, new Uint8Array(16))]), async (s, db) => {
      const w = new nativeExportIo.BaseImageWriter();
      const first = await w.applyRun(nativeHandleOf(s), nativeHandleOf(db), 8, 1, 0, 1);
      expect(first).toEqual({ end: 8 + 17 + 2 * ps, pages: 2, pageSize: ps, more: true });
      const second = await w.applyRun(nativeHandleOf(s), nativeHandleOf(db), first.end, 3, ps, 1);
      expect(second).toEqual({ end: goodBytes, pages: 1, pageSize: ps, more: false }); // at BASE_END: not more
    });
  });

  it('a stream file restores exactly as the same bytes from memory, cut or with damaged base records', async () => {
    const copy = sqliteWritesWal(dir, `src${n++}`, 512, (db) => {
      db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
      const ins = db.prepare('INSERT INTO t(v) VALUES (?)');
      db.transaction(() => {
        for (let i = 0; i < 700; i++) ins.run(Buffer.alloc(300, i & 0xff));
      })();
      db.pragma('wal_checkpoint(TRUNCATE)');
      for (let i = 0; i < 5; i++) ins.run(Buffer.alloc(300, 0xee)); // commits after the base
    });
    const store = await open(copy.db);
    const streamPath = path.join(dir, `x${n++}.ark`);
    const sink = await WalnutFile.open(streamPath, { create: true, truncate: true });
    await store.exportTo(sink).done;
    await sink.close();
    await store.close();
    const stream = fs.readFileSync(streamPath);
    // where the base image's records begin (after the magic and BASE_META)
    const heads: number[] = [];
    for (let at = 8; at + 9 <= stream.length; at += 8 + Number(stream.readBigUInt64BE(at))) if (stream[at + 8] === 0x03) heads.push(at);
    expect(heads.length).toBeGreaterThan(1);
    const mutants: [string, Buffer][] = [['whole', stream]];
    let seed = 7;
    const rand = (k: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % k;
    for (const h of heads.slice(0, 3)) {
      for (const d of [-1, 0, 1, 8, 9, 16, 17, 600]) mutants.push([`cut at ${h + d}`, stream.subarray(0, h + d)]);
      for (const field of [0, 4, 7, 8, 9, 12, 13, 16]) {
        const m = Buffer.from(stream);
        m[h + field] ^= 1 << rand(8);
        mutants.push([`flip in the head at ${h}+${field}`, m]);
      }
    }
    for (let i = 0; i < 8; i++) mutants.push([`cut ${i}`, stream.subarray(0, rand(stream.length))]);
    for (const [what, bytes] of mutants) {
      const file = path.join(scratch, `m${n++}.ark`);
      fs.writeFileSync(file, bytes);
      const fromFile = await outcome(fs.createReadStream(file), path.join(scratch, `a${n}.db`));
      const fromMemory = await outcome(bytes, path.join(scratch, `b${n++}.db`));
      expect(fromFile, what).toEqual(fromMemory);
    }
    expect(await outcome(stream, path.join(dir, `c${n++}.db`))).toMatchObject({ r: { stoppedBy: null } });
  });

  it('onProgress hears the stream bytes read, up to the whole stream, from a file and from any Readable', async () => {
    const ps = 4096;
    const pages = Array.from({ length: 600 }, (_, i) => page(ps, i & 0xff));
    const records = [encodeBaseMetaRecord(0n, 1n)];
    for (let i = 0; i < pages.length; i += 256) records.push(encodeBasePagesRecord(i + 1, pages.slice(i, i + 256)));
    records.push(encodeBaseEndRecord(pages.length, hashBytes(new Xxh3Stream().update(Buffer.concat(pages)))));
    const stream = framedStream(records);
    const file = path.join(dir, `p${n++}.ark`);
    fs.writeFileSync(file, stream);
    for (const source of [() => fs.createReadStream(file), () => Readable.from([stream.subarray(0, 1000), stream.subarray(1000)])]) {
      const heard: number[] = [];
      const target = path.join(dir, `p${n++}.db`);
      await restore(source(), target, { onProgress: (b) => heard.push(b) });
      expect(heard.length).toBeGreaterThan(0);
      expect(heard.every((b, i) => i === 0 || b >= heard[i - 1]!)).toBe(true);
      expect(heard[heard.length - 1]).toBe(stream.length);
      expect(fs.readFileSync(target).equals(Buffer.concat(pages))).toBe(true);
      // a callback that throws ends the restore with a WalnutError and leaves no file behind
      const failed = path.join(dir, `pf${n++}`);
      fs.mkdirSync(failed);
      await expectRejectsWalnut(restore(source(), path.join(failed, 'x.db'), { onProgress: () => { throw new Error('no'); } }), 'WALNUT_INVALID_ARGUMENT', { reason: 'onProgress' });
      expect(fs.readdirSync(failed)).toEqual([]);
    }
    await expectRejectsWalnut(restore(stream, path.join(dir, `pn${n++}.db`), { onProgress: 5 as never }), 'WALNUT_INVALID_ARGUMENT', { reason: 'onProgress' });
  });

  it('countCommits counts the commit frames up to a frame and returns its header; a frame beyond the WAL is named', async () => {
    const copy = sqliteWritesWal(dir, `cc${n++}`, 1024, (db) => {
      db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
      const ins = db.prepare('INSERT INTO t(v) VALUES (?)');
      for (let i = 0; i < 40; i++) db.transaction(() => {
        for (let k = 0; k <= i % 3; k++) ins.run(Buffer.alloc(700, i));
      })();
    });
    const wal = fs.readFileSync(`${copy.db}-wal`);
    const frameSize = 24 + 1024;
    const frames = (wal.length - 32) / frameSize;
    const f = await WalnutFile.open(`${copy.db}-wal`, { lane: 'background' });
    for (const x of [1, 2, Math.floor(frames / 2), frames]) {
      let commits = 0;
      for (let i = 0; i < x; i++) if (wal.readUInt32BE(32 + i * frameSize + 4) !== 0) commits++;
      const r = await nativeExportIo.countCommits(nativeHandleOf(f), 1024, x);
      expect(r.commits, `x = ${x}`).toBe(commits);
      expect(r.missingFrame).toBe(0);
      expect(Buffer.from(r.lastHeader)).toEqual(wal.subarray(32 + (x - 1) * frameSize, 32 + (x - 1) * frameSize + 24));
    }
    expect((await nativeExportIo.countCommits(nativeHandleOf(f), 1024, frames + 3)).missingFrame).toBe(frames + 1);
    await f.close();
  });
});

describe('native restore functions refuse bad arguments with a WalnutError', () => {
  it('BaseImageWriter.applyRun, update, digest and countCommits', async () => {
    const ps = 512;
    const stream = framedStream([encodeBasePagesRecord(1, [page(ps, 1)])]);
    await withFiles(stream, async (s, db) => {
      const closed = await WalnutFile.open(path.join(dir, `closed${n++}`), { create: true });
      await closed.close();
      const [fs_, fd, fc] = [s, db, closed].map(nativeHandleOf) as [never, never, never];
      const w = new nativeExportIo.BaseImageWriter();
      const apply = w.applyRun.bind(w) as (...x: unknown[]) => Promise<unknown>;
      const good: unknown[] = [fs_, fd, 8, 1, 0, 1 << 20];
      const bad: [number, unknown][] = [
        [0, {}], [0, null], [0, fc], [1, 'db'], [1, fc],
        [2, -1], [2, 2 ** 53], [2, 1.5], [2, '8'],
        [3, 0], [3, 2 ** 32], [3, -1],
        [4, 1000], [4, 256], [4, 131072], [4, -512],
        [5, -1], [5, Number.NaN],
      ];
      for (const [at, value] of bad) {
        const args = good.slice();
        args[at] = value;
        expectWalnutError(() => apply(...args), value === fc ? 'WALNUT_CLOSED' : 'WALNUT_INVALID_ARGUMENT');
      }
      for (const v of [undefined, 'pages', 12, {}]) expectWalnutError(() => (w.update as (x: unknown) => void).call(w, v), 'WALNUT_INVALID_ARGUMENT');
      // offsets past the end of the stream, or inside a record: nothing applied, no crash
      for (const offset of [0, 3, 9, stream.length, stream.length + 1, 2 ** 40]) {
        expect(await apply(fs_, fd, offset, 1, 0, 1 << 20)).toMatchObject({ pages: 0, end: offset });
      }
      // while a run is in flight, nothing else may touch the hash
      const running = apply(...good);
      expectWalnutError(() => apply(...good), 'WALNUT_INVALID_ARGUMENT');
      expectWalnutError(() => w.update(new Uint8Array(1)), 'WALNUT_INVALID_ARGUMENT');
      expectWalnutError(() => w.digest(), 'WALNUT_INVALID_ARGUMENT');
      expect(await running).toMatchObject({ pages: 1 });
      expect(w.digest()).toHaveLength(16);
      // a failed run (a read-only target) fails the writer for good
      const ro = await WalnutFile.open(path.join(dir, `ro${n++}`), { create: true });
      await ro.close();
      const readOnly = await WalnutFile.open(path.join(dir, `ro${n - 1}`), { readOnly: true });
      const w2 = new nativeExportIo.BaseImageWriter();
      await expectRejectsWalnut(w2.applyRun(fs_, nativeHandleOf(readOnly), 8, 1, 0, 1 << 20), 'WALNUT_IO');
      expectWalnutError(() => w2.digest(), 'WALNUT_INVALID_ARGUMENT');
      await readOnly.close();

      const count = nativeExportIo.countCommits as (...x: unknown[]) => Promise<unknown>;
      for (const args of [[], [{}, 512, 1], [fc, 512, 1], [fs_, 500, 1], [fs_, 131072, 1], [fs_, 512, 0], [fs_, 512, 2 ** 32], [fs_, 512, -1], [fs_, '512', 1]]) {
        expectWalnutError(() => count(...args), args[0] === fc ? 'WALNUT_CLOSED' : 'WALNUT_INVALID_ARGUMENT');
      }
      await closed.close().catch(() => undefined);
    });
  });
});

// the database from a restore passes SQLite's own check (the whole path, once)
describe('restore of a real export through the file path', () => {
  it('equals the source', async () => {
    const copy = sqliteWritesWal(dir, `eq${n++}`, 4096, (db) => {
      db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
      const ins = db.prepare('INSERT INTO t(v) VALUES (?)');
      db.transaction(() => {
        for (let i = 0; i < 3000; i++) ins.run(Buffer.alloc(900, i & 0xff));
      })();
    });
    const store = await open(copy.db);
    const file = path.join(dir, `eq${n++}.ark`);
    const sink = await WalnutFile.open(file, { create: true, truncate: true });
    await store.exportTo(sink).done;
    await sink.close();
    await store.close();
    const target = path.join(dir, `eq${n++}.db`);
    await restore(fs.createReadStream(file), target);
    const a = new Database(copy.db, { readonly: true });
    const b = new Database(target, { readonly: true });
    expect(b.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(b.prepare('SELECT count(*) AS c, sum(length(v)) AS s FROM t').get()).toEqual(a.prepare('SELECT count(*) AS c, sum(length(v)) AS s FROM t').get());
    a.close();
    b.close();
  });
});
