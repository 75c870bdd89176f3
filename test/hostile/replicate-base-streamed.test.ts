// Hostile: base images go through bounded memory (publisher.ts, replica.ts, restore-nats.ts).
// They were held whole: the primary read a later base into records before its first part went
// out, and gathered the session's first base from the export before publishing any of it; a new
// replica and restoreFromNats fetched every part, then framed them all into one message for
// restore(). For a 979 MiB database: primary RSS 1.25 GiB, new replica maxRSS 2.4 GiB (bench/README.md).
//  - primary: metrics().baseHeldPeakBytes (base records read and not yet stored) stays within the
//    first base's window (8 MiB, plus an export record and a part) for a 24 MiB database, and the
//    export takes the base's last record (BASE_END) only once all but ~13 of its ~28 parts are
//    stored (held whole, it was taken at once, before the first few parts were); and a
//    later base's held bytes, sampled while it is published, within one part and a record read
//    ahead (~0.5 MiB); the stream then restores to the primary's pages (the later base's too).
//  - new replica: the base's pages go into restore()'s temporary file as parts arrive: with one
//    part (the last but one) deleted from the stream, the temporary file grows past half the base
//    before the gap is met, then is removed, nothing renamed in, onRetry told BaseGone; the next
//    session's base image builds the replica, equal to the primary. The old code checked the base
//    whole before restore() began: no temporary file ever.
//  - restoreFromNats on that stream: WALNUT_CORRUPT BaseGone after more than half the base was
//    read (onProgress), no database and no temporary file left. The old code read 0 bytes.
//  - a base whose pages do not match its BASE_END hash (a copy of a real one, a byte flipped):
//    restoreFromNats and a new replica fail WALNUT_CORRUPT at BASE_END, the temporary file
//    written past half the base and then removed, nothing renamed in.
//  - a live replica's re-base (the primary's new session, after 5 commits the stream never saw)
//    keeps and writes only the base's pages that differ from its own (and page 1): a handful of
//    WAL frames (store.metrics().frames), where it gathered and wrote all 6,144 pages.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import type { Store } from '../../lib/commit/store';
import type { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import { connectNats, HEADER, lastMessageOn, subjectsOf } from '../../lib/replicate/nats';
import type { ReplicationHandle } from '../../lib/replicate/publisher';
import { Replica } from '../../lib/replicate/replica';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir('walnut-hostile-base-streamed-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const PAGES = 6144; // 24 MiB of 4 KiB pages
const MiB = 1 << 20;

async function primary(file: string): Promise<Store> {
  const store = await open(file, { autoCheckpoint: false });
  for (let first = 2; first <= PAGES; first += 1024) {
    const pages = Array.from({ length: Math.min(1024, PAGES - first + 1) }, (_, i) => {
      const data = Buffer.alloc(store.pageSize, (first + i) & 0xff);
      data.writeUInt32BE(first + i, 100);
      return { pgno: first + i, data };
    });
    await store.commit(pages, { dbSize: first + pages.length - 1 });
  }
  return store;
}

/** Once the session's first base is stored, `commit()`, then until the stream holds it. */
async function published(r: ReplicationHandle, commit: () => Promise<void>): Promise<void> {
  await r.ready;
  await until(() => r.metrics().bases >= 1, 30_000, () => r.metrics());
  const before = r.metrics().exportedSeq;
  await commit();
  await until(() => r.metrics().publishedSeq > before && r.metrics().publishedSeq === r.metrics().exportedSeq, 15_000, () => r.metrics());
}

describe.skipIf(NATS_SKIP !== null)('base images in bounded memory', () => {
  for (const thread of [false, true]) {
    it(`primary (${thread ? 'worker thread' : "store's loop"}): the first base within its window, a later base within a part, both restorable`, async () => {
      const server = await startNatsServer();
      started.push(server);
      const store = await primary(path.join(dir, `p-${thread}.db`));
      const r = store.replicateTo({ servers: server.url, stream: 'held', thread, baseEveryMs: 300 });
      const errors: WalnutError[] = [];
      r.on('error', (e: WalnutError) => errors.push(e));
      let bases = 0;
      r.on('base', () => bases++);
      // (store's loop: metrics are live) the stream's messages when the export's BASE_END was
      // taken (exportedSeq set): the export waited for the stream, so most parts were stored by
      // then (held whole, the base was read through in one go while its first parts went out)
      let storedAtEnd = -1;
      const watchEnd = setInterval(() => {
        const m = r.metrics();
        if (storedAtEnd < 0 && m.exportedSeq >= 0) storedAtEnd = m.messages;
      }, 0);
      try {
        await until(() => bases >= 1, 30_000, () => r.metrics());
        clearInterval(watchEnd);
        const parts = r.metrics().messages; // the first base's parts (< 900 KiB each: > 27 of them)
        expect(parts).toBeGreaterThan(27);
        if (!thread) expect(storedAtEnd).toBeGreaterThanOrEqual(parts - Math.ceil((10 * MiB) / (800 << 10)));
        const first = r.metrics().baseHeldPeakBytes;
        expect(first).toBeGreaterThan(0);
        expect(first).toBeLessThanOrEqual(8 * MiB + 2 * MiB); // the window, an export record (1 MiB) and a part
        // a later base: commits go on until it is stored, its held bytes sampled meanwhile
        let held = 0;
        let seen = 0;
        const sample = setInterval(() => {
          const m = r.metrics();
          held = Math.max(held, m.baseHeldBytes);
          if (m.baseHeldBytes > 0) seen++;
        }, 1);
        try {
          for (let i = 0; bases < 2; i++) {
            await store.commit([{ pgno: 2 + (i % 100), data: Buffer.alloc(store.pageSize, 0x40 + (i % 50)) }]);
            await new Promise((res) => setTimeout(res, 20));
            if (i > 1500) throw new Error(`no later base: ${JSON.stringify(r.metrics())}`);
          }
        } finally {
          clearInterval(sample);
        }
        if (!thread) expect(seen).toBeGreaterThan(0); // (the worker's metrics come every 50 ms: a short base may fall between)
        expect(held).toBeLessThanOrEqual(MiB); // a 256 KiB part and a record read ahead
        expect(r.metrics().baseHeldPeakBytes).toBe(first); // the later base held less than the first
        await r.stop();
        const { publishedSeq } = r.metrics();
        const out = path.join(dir, `restored-${thread}.db`);
        expect(await restoreFromNats(out, { servers: server.url, stream: 'held' })).toMatchObject({ lastCommitSeq: publishedSeq, stoppedBy: null });
        const copy = await open(out);
        expect(await pageHashes(copy)).toEqual(await pageHashes(store));
        await copy.close();
        expect(errors).toEqual([]);
      } finally {
        clearInterval(watchEnd);
        await r.stop();
        await store.close();
      }
    }, 90_000);
  }

  it('a live replica re-bases onto a new session by writing only the pages that differ from its own (it wrote the whole base: 6,144 frames), and equals the primary', async () => {
    const server = await startNatsServer();
    started.push(server);
    const stream = 'diff';
    const store = await primary(path.join(dir, 'diff.db'));
    let r = store.replicateTo({ servers: server.url, stream, thread: false });
    const file = path.join(dir, 'diff-replica.db');
    const { openReplica } = await import('../../lib/replicate/replica');
    const replica = await openReplica(file, { servers: server.url, stream });
    try {
      await published(r, async () => void (await store.commit([{ pgno: 2, data: Buffer.alloc(store.pageSize, 0x11) }])));
      await replica.waitFor(r.metrics().publishedSeq, r.metrics().session!);
      await r.stop();
      // commits the stream never sees, then a new session: its first base differs from the replica in 5 pages (and page 1)
      for (const pgno of [7, 700, 3000, 5000, PAGES]) await store.commit([{ pgno, data: Buffer.alloc(store.pageSize, pgno & 0x7f) }]);
      const framesBefore = replica.store.metrics().frames;
      const rebasesBefore = replica.lag().rebases;
      r = store.replicateTo({ servers: server.url, stream, thread: false });
      await published(r, async () => void (await store.commit([{ pgno: 9, data: Buffer.alloc(store.pageSize, 0x22) }])));
      await replica.waitFor(r.metrics().publishedSeq, r.metrics().session!);
      expect(replica.lag().rebases).toBe(rebasesBefore + 1);
      const written = replica.store.metrics().frames - framesBefore;
      expect(written).toBeGreaterThanOrEqual(6);
      expect(written).toBeLessThan(64); // page 1, the 5 changed pages, and the commit after
      expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    } finally {
      await replica.close();
      await r.stop();
      await store.close();
    }
  }, 90_000);

  it('a base image whose pages do not match its BASE_END hash (a byte flipped in a middle part): restoreFromNats and a new replica fail WALNUT_CORRUPT after writing most of it, nothing renamed in', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await primary(path.join(dir, 'flip.db'));
    const r = store.replicateTo({ servers: server.url, stream: 'src', thread: false, maxMessageBytes: 64 << 10 });
    try {
      await r.ready;
      await until(() => r.metrics().bases >= 1, 30_000, () => r.metrics());
    } finally {
      await r.stop();
    }
    // the base's parts copied into another stream as the publisher sent them, one byte of a page flipped in a middle part
    const link = await connectNats([server.url], () => true, 'operator');
    let parts = 0;
    try {
      await link.jsm.streams.add({ name: 'flip', subjects: ['walnut.flip.>'] });
      const last = (await lastMessageOn(link, 'src', subjectsOf('src').base))!;
      const first = Number(last.header.get(HEADER.BASE_FIRST));
      parts = last.seq - first + 1;
      let firstCopy = 0;
      for (let seq = first; seq <= last.seq; seq++) {
        const m = (await link.jsm.streams.getMessage('src', { seq }))!;
        const h = link.headers();
        for (const [k, v] of m.header) if (k !== HEADER.BASE_FIRST) h.set(k, v[0]!);
        if (seq > first) h.set(HEADER.BASE_FIRST, String(firstCopy));
        const data = new Uint8Array(m.data);
        if (seq === first + Math.floor(parts / 2)) data[8 + 8 + 9 + 100] ^= 0xff; // a page byte of its first BASE_PAGES record
        const ack = await link.js.publish('walnut.flip.base', data, { headers: h });
        if (seq === first) firstCopy = ack.seq;
      }
    } finally {
      await link.nc.close();
      await store.close();
    }
    expect(parts).toBeGreaterThan(300);
    const baseBytes = PAGES * 4096;
    const sub = path.join(dir, 'flip');
    fs.mkdirSync(sub);
    let progress = 0;
    const failed = await restoreFromNats(path.join(sub, 'restored.db'), { servers: server.url, stream: 'flip', onProgress: (b: number) => void (progress = b) }).then(() => null, (e: WalnutError) => e);
    expect([failed?.code, failed?.message]).toEqual(['WALNUT_CORRUPT', 'WALNUT_CORRUPT: the base image does not match its BASE_END hash']);
    expect(progress).toBeGreaterThan(baseBytes * 0.9); // read to its end, pages written as they came
    expect(fs.readdirSync(sub)).toEqual([]);
    let tmpMax = 0;
    const watch = setInterval(() => {
      for (const n of fs.readdirSync(sub)) {
        if (!/^\.replica\.db\.restore-[0-9a-f]+$/.test(n)) continue;
        try {
          tmpMax = Math.max(tmpMax, fs.statSync(path.join(sub, n)).size);
        } catch {
          // (removed meanwhile)
        }
      }
    }, 1);
    try {
      const { openReplica } = await import('../../lib/replicate/replica');
      const e = await openReplica(path.join(sub, 'replica.db'), { servers: server.url, stream: 'flip' }).then(async (rep) => (await rep.close(), null), (x: WalnutError) => x);
      expect(e?.code).toBe('WALNUT_CORRUPT');
    } finally {
      clearInterval(watch);
    }
    expect(tmpMax).toBeGreaterThan(baseBytes / 2);
    expect(fs.existsSync(path.join(sub, 'replica.db'))).toBe(false);
    expect(fs.readdirSync(sub).filter((n) => n.includes('.restore-') && !n.endsWith('-asides'))).toEqual([]);
  }, 90_000);

  it('a new replica writes the base into its temporary file as parts arrive; a part gone: nothing renamed in, BaseGone, then the next base; restoreFromNats alike', async () => {
    const server = await startNatsServer();
    started.push(server);
    const stream = 'gap';
    const store = await primary(path.join(dir, 'gap.db'));
    const base = path.join(dir, 'gap');
    fs.mkdirSync(base);
    let r = store.replicateTo({ servers: server.url, stream, thread: false, maxMessageBytes: 64 << 10 });
    try {
      await r.ready;
      await r.stop();
      // the last part but one of the first base image, deleted
      const link = await connectNats([server.url], () => true, 'operator');
      let total = 0;
      try {
        const last = await lastMessageOn(link, stream, subjectsOf(stream).base);
        const firstSeq = Number(last!.header.get(HEADER.BASE_FIRST));
        const parts = Number(last!.header.get(HEADER.BASE_PART)) + 1;
        expect(parts).toBeGreaterThan(300); // 24 MiB in parts of < 64 KiB
        expect(last!.seq - firstSeq + 1).toBe(parts);
        total = parts;
        expect(await link.jsm.streams.deleteMessage(stream, last!.seq - 1)).toBe(true);
      } finally {
        await link.nc.close();
      }
      const baseBytes = PAGES * store.pageSize;
      expect(total).toBeGreaterThan(0);

      // restoreFromNats: BaseGone once it meets the gap, after most of the base went into its temporary file
      const target = path.join(base, 'restored.db');
      let progress = 0;
      const failed = await restoreFromNats(target, { servers: server.url, stream, onProgress: (b: number) => void (progress = b) }).then(() => null, (e: WalnutError) => e);
      expect([failed?.code, failed?.reason]).toEqual(['WALNUT_CORRUPT', 'BaseGone']);
      expect(progress).toBeGreaterThan(baseBytes / 2);
      expect(fs.readdirSync(base)).toEqual([]); // no database, no temporary file, no marker

      // a new replica: the temporary file grows, then goes; BaseGone told; nothing renamed in
      const told: WalnutError[] = [];
      const file = path.join(base, 'replica.db');
      const replica = new Replica(file, { servers: server.url, stream, onRetry: (e) => told.push(e) });
      let tmpMax = 0;
      const watch = setInterval(() => {
        for (const n of fs.readdirSync(base)) {
          if (!/^\.replica\.db\.restore-[0-9a-f]+$/.test(n)) continue;
          try {
            tmpMax = Math.max(tmpMax, fs.statSync(path.join(base, n)).size);
          } catch {
            // (removed meanwhile)
          }
        }
      }, 1);
      const opening = replica.start().then(() => null, (e: WalnutError) => e);
      try {
        await until(() => told.length > 0, 20_000, () => ({ lag: replica.lag(), tmpMax }));
        expect(told.map((e) => `${e.code} ${e.reason}`)).toEqual(['WALNUT_IO BaseGone']);
        expect(tmpMax).toBeGreaterThan(baseBytes / 2); // pages written as the parts came, before the gap
        expect(fs.existsSync(file)).toBe(false); // nothing renamed in
        expect(fs.readdirSync(base).filter((n) => n.includes('.restore-') && !n.endsWith('-asides'))).toEqual([]);
        // the primary's next session: a whole base image, which builds the replica
        r = store.replicateTo({ servers: server.url, stream, thread: false, maxMessageBytes: 64 << 10 });
        await r.ready;
        await store.commit([{ pgno: 3, data: Buffer.alloc(store.pageSize, 0x77) }]);
        expect(await opening).toBeNull();
        const { publishedSeq, session } = r.metrics();
        await until(() => r.metrics().publishedSeq === r.metrics().exportedSeq, 15_000, () => r.metrics());
        await replica.waitFor(r.metrics().publishedSeq, r.metrics().session!);
        expect(publishedSeq).toBeGreaterThanOrEqual(0);
        expect(session).not.toBeNull();
        expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
      } finally {
        clearInterval(watch);
        await replica.close();
        await opening;
      }
    } finally {
      await r.stop();
      await store.close();
    }
  }, 90_000);
});
