// Another client's messages lying among the parts of a base image: `nats pub walnut.<stream>.x`
// (any subject the stream takes but walnut's log) or a message without a Walnut-Session on
// walnut.<stream>.base, published while a later base image goes out part by part. Readers of
// the parts skipped only log messages there, so a later base image with such a message among
// its parts was taken for an incomplete one: restoreFromNats failed WALNUT_CORRUPT BaseGone
// ("base image part 8 of commit 10 is no longer in the stream", every part still there), and a
// new replica waited for ever for a whole base image (openReplica did not resolve). Now what is
// not a part of that base image is skipped; the parts' own numbers tell whether one is missing.
// The other client here answers each part it sees (a core subscription on the base subject)
// with its own messages, so they land among the parts as a live `nats pub` would.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { connectNats, HEADER, messageAt } from '../../lib/replicate/nats';
import { openReplica } from '../../lib/replicate/replica';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { appliedOrError, NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const page = (i: number): Buffer => Buffer.alloc(4096, (i * 37 + 11) & 0xff);

describe.skipIf(NATS_SKIP !== null)('another client\'s messages among a base image\'s parts', () => {
  it('restoreFromNats restores from that base image and a new replica is built from it', async () => {
    const server = await startNatsServer();
    started.push(server);
    const stream = 'partsjunk';
    const store = await open(path.join(dir, 'p.db'));
    const r = store.replicateTo({ servers: server.url, stream, baseEveryMs: 1, stopTimeoutMs: 30_000 });
    await r.ready;
    await until(() => r.metrics().bases >= 1, 10_000, () => r.metrics());
    // the other client: a message of its own on another subject and on the base subject
    // (no session) after each part of a later base image it sees
    const other = await connectNats([server.url], () => true, 'another client');
    let answered = 0;
    const sub = (other.nc as unknown as { subscribe(s: string, o: { callback(e: unknown, m: { headers?: { get(k: string): string } }): void }): { unsubscribe(): void } }).subscribe(`walnut.${stream}.base`, {
      callback: (_e, m) => {
        const h = m.headers;
        if (!h?.get(HEADER.SESSION) || h.get(HEADER.BASE_SEQ) === '0' || h.get(HEADER.BASE_FINAL) === '1') return;
        answered++;
        void other.js.publish(`walnut.${stream}.other`, Buffer.from('not walnut\'s')).catch(() => undefined);
        void other.js.publish(`walnut.${stream}.base`, Buffer.from('not walnut\'s either')).catch(() => undefined);
      },
    });
    // ~3 MiB: a later base image of 12 parts (256 KiB each)
    await store.commit(Array.from({ length: 750 }, (_, k) => ({ pgno: 2 + k, data: page(k) })));
    await until(() => r.metrics().bases >= 2, 30_000, () => r.metrics());
    sub.unsubscribe();
    await r.stop();
    const published = r.metrics().publishedSeq;
    // the newest base image has the other client's messages among its parts
    const last = (await other.jsm.streams.getMessage(stream, { last_by_subj: `walnut.${stream}.base` }))!;
    const final = last.header?.get(HEADER.SESSION) ? last : null;
    let foreign = 0;
    let finalSeq = final?.seq ?? 0;
    if (final === null) {
      // the subject's last message is the other client's: walnut's final part is before it
      for (let s = last.seq - 1; s > 0 && finalSeq === 0; s--) {
        const m = await messageAt(other, stream, s);
        if (m?.header?.get(HEADER.BASE_FINAL) === '1' && m.header.get(HEADER.SESSION)) finalSeq = s;
      }
    }
    const finalMsg = (await messageAt(other, stream, finalSeq))!;
    const first = Number(finalMsg.header.get(HEADER.BASE_FIRST) || finalSeq);
    for (let s = first; s < finalSeq; s++) {
      const m = await messageAt(other, stream, s);
      if (m !== null && !m.header?.get(HEADER.SESSION)) foreign++;
    }
    await other.nc.close();
    expect(answered).toBeGreaterThan(0);
    expect(Number(finalMsg.header.get(HEADER.BASE_PART))).toBeGreaterThan(1);
    expect(foreign).toBeGreaterThan(0);
    // a restore from that base image (the newest: no commits after it) ...
    const restoredPath = path.join(dir, 'restored.db');
    const restored = await restoreFromNats(restoredPath, { servers: server.url, stream });
    expect([restored.lastCommitSeq, restored.stoppedBy]).toEqual([published, null]);
    const copy = await open(restoredPath);
    expect(await pageHashes(copy)).toEqual(await pageHashes(store));
    await copy.close();
    // ... and a new replica built from it
    const opening = openReplica(path.join(dir, 'replica.db'), { servers: server.url, stream });
    const replica = await Promise.race([opening, new Promise<null>((res) => setTimeout(res, 8000, null))]);
    if (replica === null) {
      void opening.then((late) => late.close(), () => undefined);
      expect.fail('openReplica did not resolve within 8 s');
    }
    try {
      await appliedOrError(replica, published, r.metrics().session);
      expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    } finally {
      await replica.close();
      await store.close();
    }
  });
});
