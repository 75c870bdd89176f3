// Hostile: a replica applies a batch of the primary's commits as one walnut commit; within such a
// batch a commit that shrinks the database can be followed by one that grows it back. The
// primary's regrowing commit writes zero frames only for the dropped pages that could still hold
// old bytes on its side (GroupCommitter #withRegrownZeros): once a checkpoint cut the database
// file and the WAL restarted, it writes none (its file's holes read as zeros). A replica that had
// applied the database at its larger size before the batch, and merged the batch's pages as the
// union of its commits' pages with the last size, kept its own old bytes in the pages the shrink
// dropped and the regrowth brought back without writing: the replica differed from the primary
// (and a restore) there. Also restores at the shrunk and regrown commits, and a late replica.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { openReplica } from '../../lib/replicate/replica';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { appliedOrError as applied, NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageBytes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir('walnut-hostile-replica-batch-regrow-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));
const P = 1024;
const page = (v: number): Buffer => Buffer.alloc(P, v);


function expectPages(what: string, got: Buffer, want: Buffer): void {
  expect(got.length / P, `${what}: pages`).toBe(want.length / P);
  for (let p = 0; p < want.length / P; p++) {
    expect(Buffer.compare(got.subarray(p * P, (p + 1) * P), want.subarray(p * P, (p + 1) * P)), `${what}: page ${p + 1} differs from the primary's`).toBe(0);
  }
}

describe.skipIf(NATS_SKIP !== null)(`a replica's batch holding a shrink and the regrowth after it${NATS_SKIP ? ` (skipped: ${NATS_SKIP})` : ''}`, () => {
  it.each([{ thread: true }, { thread: false }])('publisher thread $thread: pages the regrowth did not write read as zeros on the replica (the primary wrote no zeros: its WAL had restarted)', async ({ thread }) => {
    const server = await startNatsServer();
    started.push(server);
    const name = `t${thread ? 'w' : 'l'}`;
    const file = path.join(dir, `${name}.db`);
    const store = await open(file, { pageSize: P, autoCheckpoint: false });
    const cleanup: (() => Promise<unknown>)[] = [() => store.close()];
    try {
      const r = store.replicateTo({ servers: server.url, stream: name, thread });
      cleanup.push(() => r.stop());
      const errors: string[] = [];
      r.on('error', (e: Error) => errors.push(`publisher: ${e.message}`));
      await r.ready;
      const livePath = path.join(dir, `${name}-live.db`);
      let live = await openReplica(livePath, { servers: server.url, stream: name });
      const all = [];
      for (let p = 2; p <= 40; p++) all.push({ pgno: p, data: page(p) });
      await store.commit(all, { dbSize: 40 }); // 1
      await applied(live, 1, r.metrics().session); // the replica holds pages 2..40
      await live.close();
      await store.commit([{ pgno: 2, data: page(200) }], { dbSize: 5 }); // 2: the shrink
      const shrunk = await pageBytes(store);
      // the shrink checkpointed (the database file cut to 5 pages) and the WAL restarted: the
      // follow export has read the WAL (the shrink published) before a restart can go
      for (let i = 0; ; i++) {
        await new Promise((res) => setTimeout(res, 20));
        if (r.metrics().publishedSeq < 2) continue;
        if (!(await store.checkpoint('truncate')).busy) break;
        expect(i).toBeLessThan(3000);
      }
      expect(fs.statSync(file).size).toBe(5 * P);
      await store.commit([{ pgno: 30, data: page(130) }], { dbSize: 30 }); // 3: the regrowth (no zeros written: nothing old on the primary)
      await store.commit([{ pgno: 3, data: page(33) }]); // 4
      const last = await pageBytes(store);
      for (let p = 6; p <= 29; p++) expect(last.subarray((p - 1) * P, p * P).equals(page(0)), `primary page ${p}`).toBe(true);
      await r.stop();
      expect(errors).toEqual([]);
      expect(r.metrics().publishedSeq).toBe(4);
      // the replica resumes: commits 2..4 in one batch
      live = await openReplica(livePath, { servers: server.url, stream: name });
      cleanup.push(() => live.close());
      await applied(live, 4, r.metrics().session);
      expectPages('restarted replica', await pageBytes(live.store), last);
      const lateRestore = path.join(dir, `${name}-restored.db`);
      expect(await restoreFromNats(lateRestore, { servers: server.url, stream: name })).toMatchObject({ lastCommitSeq: 4 });
      expectPages('restore', fs.readFileSync(lateRestore), last);
      const shrunkRestore = path.join(dir, `${name}-restored-2.db`);
      expect(await restoreFromNats(shrunkRestore, { servers: server.url, stream: name, until: 2 })).toMatchObject({ lastCommitSeq: 2 });
      expectPages('restore until 2', fs.readFileSync(shrunkRestore), shrunk);
      const late = await openReplica(path.join(dir, `${name}-late.db`), { servers: server.url, stream: name });
      cleanup.push(() => late.close());
      await applied(late, 4, r.metrics().session);
      expectPages('late replica', await pageBytes(late.store), last);
    } finally {
      for (const close of cleanup.reverse()) await close().catch(() => undefined);
    }
  });
});
