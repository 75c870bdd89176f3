// A replica whose stream lost the log right after its newest base image. A later base image's
// parts are published behind the log messages of the commits made meanwhile (its Walnut-Log-From
// points before its first part), so a stream's retention (discard old) can cut the log a base
// image goes on with while keeping the base. The replica, built from that base, found the
// commits after it gone and re-based onto the same base image, over and over (a whole-database
// commit each, ~7 a second, 28 re-bases in 4 s of a 1,000-page database) without ever going
// further. Now it stays at the base's commit and says so once ('error' WALNUT_IO reason
// BehindRetention) until a newer base image is published, then re-bases onto that one.
// The test cuts the stream so: everything before the newest base's first part, and the log
// messages among its parts and the first one after them. A message gone from among a base's
// parts was taken for a missing part: openReplica waited for ever for a whole base image (past
// connectTimeoutMs) and restoreFromNats failed BaseGone; the parts' own numbers tell now.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import { connectNats, HEADER } from '../../lib/replicate/nats';
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

describe.skipIf(NATS_SKIP !== null)('a replica whose newest base image lost the log after it', () => {
  it('stays at the base\'s commit (one BehindRetention error, no re-base loop), then follows a newer base image', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'));
    const r1 = store.replicateTo({ servers: server.url, stream: 'cut', baseEveryCommits: 20, stopTimeoutMs: 30_000 });
    await r1.ready;
    let newestBase = -1; // the seq of the newest base image stored
    r1.on('base', (e: { seq: number }) => {
      newestBase = Math.max(newestBase, e.seq);
    });
    await store.commit(Array.from({ length: 200 }, (_, k) => ({ pgno: 2 + k, data: page(k) })));
    // one-page commits until a later base image went out, then a few more after it
    for (let i = 0; i < 2000 && r1.metrics().bases < 2; i++) await store.commit([{ pgno: 2 + (i % 200), data: page(1000 + i) }]);
    expect(r1.metrics().bases).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < 10; i++) {
      await store.commit([{ pgno: 2 + ((i * 7) % 200), data: page(5000 + i) }]);
      await new Promise((res) => setTimeout(res, 30)); // messages of their own (the publisher sends at once when none is in flight)
    }
    // a base image those commits started may cover the last of them (a fresh clone's CI saw the
    // newest base at the last commit): go on until everything is stored, no base came for
    // 300 ms, and two commits made after the newest base was stored follow it, each a message of
    // its own (made with nothing in flight). The cut below deletes the first log message after
    // the base: with one message after it (a CI run) nothing was left after the cut, and the
    // restore ended at the base without a broken chain to tell
    for (let i = 0, quietSince = Date.now(), seen = newestBase, ownAfter = 0; i < 200; i++) {
      await new Promise((res) => setTimeout(res, 30));
      if (newestBase !== seen) [seen, quietSince, ownAfter] = [newestBase, Date.now(), 0];
      const m = r1.metrics();
      if (m.lagCommits === 0 && Date.now() - quietSince >= 300 && ownAfter >= 2 && newestBase < m.publishedSeq) break;
      if (m.lagCommits === 0 && ownAfter < 2) {
        await store.commit([{ pgno: 2 + ((i * 11) % 200), data: page(6000 + i) }]);
        ownAfter++;
      }
    }
    await r1.stop();
    // retention's cut: everything before the newest base's first part, and the log it goes on with
    const link = await connectNats([server.url], () => true, 'test');
    let baseSeq: number;
    try {
      const last = (await link.jsm.streams.getMessage('cut', { last_by_subj: 'walnut.cut.base' }))!;
      baseSeq = Number(last.header.get(HEADER.BASE_SEQ));
      const first = Number(last.header.get(HEADER.BASE_FIRST) || last.seq);
      expect(baseSeq).toBeLessThan(r1.metrics().publishedSeq);
      expect(last.header.get(HEADER.BASE_FINAL)).toBe('1');
      await link.jsm.streams.purge('cut', { seq: first });
      // and the log messages among its parts and the one after them (here: certainly commits
      // after the base; a stream can lose these while keeping the base, as a cluster's node did)
      for (let q = first, after = false; !after; q++) {
        const m = (await link.jsm.streams.getMessage('cut', { seq: q }))!;
        if (m.subject !== 'walnut.cut.log') continue;
        await link.jsm.streams.deleteMessage('cut', q);
        after = q > last.seq;
      }
    } finally {
      await link.nc.close();
    }
    // a restore of the newest state gives the base's, and says the log after it is gone
    // (stoppedBy 'LogGap' from the commit after the base; it said ChecksumChainBroken)
    const restored = await restoreFromNats(path.join(dir, 'restored.db'), { servers: server.url, stream: 'cut' });
    expect([restored.lastCommitSeq, restored.stoppedBy, restored.logGap?.fromSeq]).toEqual([baseSeq, 'LogGap', baseSeq + 1]);
    expect(restored.logGap!.toSeq).toBeGreaterThanOrEqual(baseSeq + 1);
    const replica = await openReplica(path.join(dir, 'replica.db'), { servers: server.url, stream: 'cut' });
    const errors: WalnutError[] = [];
    replica.on('error', (e: WalnutError) => errors.push(e));
    try {
      await until(() => errors.length > 0 || replica.lag().rebases > 3, 15_000, () => replica.lag());
      await new Promise((res) => setTimeout(res, 1500));
      expect(replica.lag().rebases, JSON.stringify(replica.lag())).toBe(0);
      expect(replica.lag().appliedSeq).toBe(baseSeq);
      expect(errors.map((e) => `${e.code} ${e.reason}`)).toEqual(['WALNUT_IO BehindRetention']);
      // a newer base image (a new session of the primary): the replica re-bases onto it and follows
      const r2 = store.replicateTo({ servers: server.url, stream: 'cut', stopTimeoutMs: 30_000 });
      await r2.ready;
      for (let i = 0; i < 5; i++) await store.commit([{ pgno: 2 + i, data: page(9000 + i) }]);
      await r2.stop();
      await appliedOrError(replica, r2.metrics().publishedSeq, r2.metrics().session);
      expect(replica.lag().rebases).toBe(1);
      expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    } finally {
      await replica.close();
      await store.close();
    }
  }, 90_000);
});
