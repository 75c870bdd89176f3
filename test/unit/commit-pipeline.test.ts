// No failure inside the commit pipeline escapes as an unhandled rejection (issue #17 item 1):
// each reaches exactly the commits of its batch as a WalnutError. Before the batch's frames
// are written (the beforeBatch wait, the conflict lookup) the committer goes on (after
// resumeCommits(): the failure broke the commit chain); once frames may
// be in the WAL without the index publishing them the store stops with WALNUT_FAILED, as after
// a failed fsync (DESIGN.md section 4).
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { GroupCommitter } from '../../lib/commit/group-committer';
import { open } from '../../lib/commit/store';
import { walnutError, WalnutError } from '../../lib/errors';
import { WalIndex } from '../../lib/wal-index/wal-index';
import { HELPERS, runNode } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;
const fresh = () => path.join(dir, `p${n++}.db`);
const pages = (pgno: number, v: number) => [{ pgno, data: Buffer.alloc(4096, v) }];

expectNoUnhandledRejections();

/** A committer over a real database's index, with the given beforeBatch hook. */
async function committerWith(beforeBatch?: () => Promise<void>): Promise<{ index: WalIndex; committer: GroupCommitter }> {
  const file = fresh();
  await (await open(file)).close(); // creates the database
  const index = await WalIndex.open(file);
  const committer = new GroupCommitter(index, { synchronous: 'full', maxBatchBytes: 8 << 20, maxWaitMicros: 0, beforeBatch });
  return { index, committer };
}

async function pageOf(index: WalIndex, pgno: number): Promise<number> {
  const snap = await index.beginRead();
  try {
    return (await snap.read(pgno))[0]!;
  } finally {
    snap.release();
  }
}

describe('failures before the write reject their batch; the committer goes on once resumed', () => {
  it('beforeBatch (the auto-checkpoint wait) rejecting', async () => {
    let fail = true;
    const busy = walnutError('WALNUT_BUSY', 'the checkpoint this batch waited for could not get its lock');
    const { index, committer } = await committerWith(async () => {
      if (fail) {
        fail = false;
        throw busy;
      }
    });
    const batch = [committer.submit(pages(2, 1), undefined), committer.submit(pages(3, 1), undefined)];
    for (const c of batch) expect(await c.catch((e: unknown) => e)).toBe(busy);
    await expectRejectsWalnut(committer.submit(pages(2, 2), undefined), 'WALNUT_FAILED', { reason: 'ChainBroken' });
    expect(committer.resumeCommits(busy)).toBe(true);
    await committer.submit(pages(2, 2), undefined);
    expect(committer.failed).toBeNull();
    expect(await pageOf(index, 2)).toBe(2);
    expect(await pageOf(index, 3)).toBe(0); // the rejected batch wrote nothing
    await committer.close();
    await index.close();
  });

  it('the conflict lookup throwing rejects every commit of its batch, and only those', async () => {
    const { index, committer } = await committerWith();
    const corrupt = walnutError('WALNUT_CORRUPT', 'the wal-index hash table is damaged');
    const throwing: Iterable<number> = {
      [Symbol.iterator]: () => ({ next: () => { throw corrupt; } }),
    };
    const plain = committer.submit(pages(2, 1), undefined);
    const checked = committer.submit(pages(3, 1), undefined, { conflict: { pgnos: throwing, mxFrame: 0, salts: [0, 0] } });
    expect(await plain.catch((e: unknown) => e)).toBe(corrupt);
    expect(await checked.catch((e: unknown) => e)).toBe(corrupt);
    expect(committer.resumeCommits()).toBe(true);
    await committer.submit(pages(4, 4), undefined);
    expect([await pageOf(index, 2), await pageOf(index, 3), await pageOf(index, 4)]).toEqual([0, 0, 4]);
    await committer.close();
    await index.close();
  });

  it('an error that is not a WalnutError (a walnut bug) stops the committer with WALNUT_FAILED', async () => {
    const { index, committer } = await committerWith(async () => {
      throw new TypeError('a bug');
    });
    const err = await expectRejectsWalnut(committer.submit(pages(2, 1), undefined), 'WALNUT_FAILED');
    expect((err as WalnutError & { cause?: unknown }).cause).toBeInstanceOf(TypeError);
    await expectRejectsWalnut(committer.submit(pages(2, 1), undefined), 'WALNUT_FAILED');
    await committer.close();
    await index.close();
  });

  it('after close() every submit is refused with WALNUT_CLOSED', async () => {
    const { index, committer } = await committerWith();
    const queued = committer.submit(pages(2, 1), undefined);
    await committer.close();
    await queued; // what was queued before close() still goes
    await expectRejectsWalnut(committer.submit(pages(2, 2), undefined), 'WALNUT_CLOSED');
    await index.close();
  });
});

describe('the -shm cannot grow for a batch\'s index entries', () => {
  it('the batch fails before its frames are written (WALNUT_IO), no unhandled rejection; the store goes on once resumed; a reopen has the acknowledged commits only', async () => {
    const file = fresh();
    const r = await runNode(path.join(HELPERS, 'publish-fault-child.js'), [file], { WALNUT_FAULT_INJECTION: '1' });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out.before).toEqual({ ok: true });
    // (it was WALNUT_FAILED, the store stopped: the -shm grew only after the frames were written)
    expect(out.batch).toEqual([
      { ok: false, code: 'WALNUT_IO', walnut: 'WalnutError' },
      { ok: false, code: 'WALNUT_IO', walnut: 'WalnutError' },
    ]);
    expect(out.walFrames).toBe(4000); // nothing of the batch in the WAL
    expect(out.resumed).toBe(true);
    expect(out.after).toEqual({ ok: true });
    expect(out.snapshot).toEqual({ ok: true });
    expect(out.close).toEqual({ ok: true });
    expect(out.unhandled).toEqual([]);
    const store = await open(file);
    const snap = await store.snapshot();
    expect(snap.dbSize).toBeGreaterThanOrEqual(4002);
    // the acknowledged commits (pages 2..4001 = 1, then 4002 = 3) are there; the failed batch (pages 2..101 = 2) is not
    const values: number[] = [];
    for (const p of [2, 51, 52, 101, 4001, 4002]) values.push((await snap.read(p))[100]!);
    expect(values).toEqual([1, 1, 1, 1, 1, 3]);
    snap.release();
    await store.close();
  });
});
