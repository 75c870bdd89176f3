// restoreFromNats over a stream whose retention (max_bytes) dropped the first parts of a base
// image and kept its final part. Such a base image was listed as restorable: the newest one,
// and every restore failed WALNUT_CORRUPT BaseGone ("part 0 ... is no longer in the stream",
// where the README says such a stream fails NoBase), or the earliest one, which an `until`
// before it was told (BeforeEarliest) was "the earliest state the stream can restore", and a
// restore to that point then failed BaseGone. Now only base images whose first part the stream
// still holds count: the earliest named is one that restores, and a stream without one is
// refused NoBase, naming the retention.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import type { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const page = (k: number, salt: number): Buffer => Buffer.alloc(4096, (k * 7 + salt) & 0xff);

/** The restore's outcome: its lastCommitSeq, or the error's code, reason and message. */
function outcome(p: Promise<{ lastCommitSeq: number }>): Promise<{ seq: number } | { code: string; reason: unknown; message: string; earliestSeq?: number }> {
  return p.then(
    (r) => ({ seq: r.lastCommitSeq }),
    (e: WalnutError & { earliestSeq?: number }) => ({ code: e.code, reason: e.reason, message: e.message, earliestSeq: e.earliestSeq }),
  );
}

describe.skipIf(NATS_SKIP !== null)('restoreFromNats, a base image whose first parts retention dropped', () => {
  it('the only base image cut: refused NoBase naming the retention (it failed BaseGone)', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'one.db'));
    // 1.2 MB of pages, a stream of 200 KB, base parts of 64 KiB
    await store.commit(Array.from({ length: 300 }, (_, k) => ({ pgno: 2 + k, data: page(k, 1) })));
    const r = store.replicateTo({ servers: server.url, stream: 'one', maxBytes: 200_000, maxMessageBytes: 65_536 });
    const errors: string[] = [];
    r.on('error', (e: WalnutError) => errors.push(`${e.reason}`));
    await r.ready;
    await store.commit([{ pgno: 2, data: page(0, 9) }]);
    await until(() => errors.includes('RetentionTooSmall'), 15_000, () => r.metrics());
    await r.stop();
    await store.close();
    for (const u of [undefined, 0]) {
      const got = await outcome(restoreFromNats(path.join(dir, `one-${u}.db`), { servers: server.url, stream: 'one', until: u }));
      expect(got, JSON.stringify(got)).toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'NoBase' });
      expect((got as { message: string }).message).toMatch(/retention dropped the first part of base image/);
    }
  }, 30_000);

  it('the earliest base image cut: BeforeEarliest names the next, which restores (it named the cut one, then BaseGone)', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'two.db'));
    await store.commit(Array.from({ length: 300 }, (_, k) => ({ pgno: 2 + k, data: page(k, 1) })));
    // a stream of 2.6 MB: base image 0 (1.2 MB), 0.7 MB of log, then base image 1 (1.2 MB)
    // pushes base image 0's first parts out and keeps its final part
    const r = store.replicateTo({ servers: server.url, stream: 'two', maxBytes: 2_600_000, maxMessageBytes: 65_536, baseEveryCommits: 1 });
    await r.ready;
    await store.commit(Array.from({ length: 170 }, (_, k) => ({ pgno: 2 + k, data: page(k, 2) }))); // commit 1
    await store.commit([{ pgno: 2, data: page(0, 3) }]); // commit 2: base image 1 or 2 follows
    await until(() => r.metrics().bases >= 2, 15_000, () => r.metrics());
    await store.commit([{ pgno: 3, data: page(1, 4) }]);
    await r.stop();
    const last = r.metrics().publishedSeq;
    await store.close();
    const before = await outcome(restoreFromNats(path.join(dir, 'two-0.db'), { servers: server.url, stream: 'two', until: 0 }));
    expect(before).toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'BeforeEarliest' });
    const earliest = (before as { earliestSeq: number }).earliestSeq;
    expect(earliest).toBeGreaterThan(0);
    // the point the error names restores
    expect(await outcome(restoreFromNats(path.join(dir, 'two-earliest.db'), { servers: server.url, stream: 'two', until: earliest }))).toEqual({ seq: earliest });
    expect(await outcome(restoreFromNats(path.join(dir, 'two-all.db'), { servers: server.url, stream: 'two' }))).toEqual({ seq: last });
  }, 30_000);
});
