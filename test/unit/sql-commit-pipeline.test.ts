// CommitPipeline.sequence()'s promise is always handled (the pipeline's bookkeeping is its
// first handler), so its caller may drop it: the VFS adds no handler of its own. The one
// promise it makes before its bookkeeping — a commit after a failure, before recovery — was a
// bare Promise.reject: dropped, an unhandled rejection.
import * as path from 'node:path';
import { expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { newDatabasePage1 } from '../../lib/format/db-header';
import { CommitPipeline } from '../../lib/sql/commit-pipeline';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

it('a commit sequenced after a failure, before recovery, rejects with that failure and needs no handler of the caller', async () => {
  const store = await open(path.join(tmpDir(), 'pipeline.db'), { maxPageCount: 8 });
  const pipeline = new CommitPipeline(store);
  try {
    const view = pipeline.tryOpenView(false)!;
    expect(view).not.toBeNull();
    const page = (): Buffer => pipeline.pageBuffer().fill(1);
    const refused = pipeline.sequence([{ pgno: 9, data: page() }], 9, view); // past maxPageCount: refused
    let after: Promise<unknown> | null = null;
    const failure = await refused.catch((e: unknown) => {
      // the pipeline's handler ran first (it has failed), its recovery has not: dropped
      after = pipeline.sequence([{ pgno: 2, data: page() }], 2, view);
      return e;
    });
    expect(failure).toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT' });
    expect(after).toBeInstanceOf(Promise);
    await new Promise((resolve) => setTimeout(resolve, 5)); // (an unhandled rejection is reported by now)
    expect(await after!.catch((e: unknown) => e)).toBe(failure);
    pipeline.releaseView(view);
    await pipeline.recovered();
  } finally {
    await store.close();
  }
});

// Page 1 as the writer's last commit left it is kept without a copy: the commit's own buffer,
// kept out of the spare buffers (pageBuffer()) until another page 1 replaces it, though the
// store hands it back (`release`) once durable. Recycled while kept, the next transaction's
// writes land in it and the change counter SQLite reads at its start is another page's bytes.
it("the writer's kept page 1 is its last commit's, and no spare buffer handed out while it is kept is that buffer", async () => {
  const store = await open(path.join(tmpDir(), 'page1.db'));
  const pipeline = new CommitPipeline(store);
  try {
    const pageSize = store.pageSize;
    let committed: Buffer | null = null;
    for (let k = 1; k <= 20; k++) {
      const view = pipeline.tryOpenView(false)!;
      expect(view).not.toBeNull();
      if (committed !== null) expect(pipeline.keptPage1(view)?.equals(committed)).toBe(true);
      // the next transaction's writes: every spare buffer there is, overwritten
      const taken = Array.from({ length: 8 }, () => pipeline.pageBuffer().fill(0xee));
      if (committed !== null) expect(pipeline.keptPage1(view)?.equals(committed)).toBe(true);
      for (const b of taken) pipeline.recycle(b);
      const p1 = pipeline.pageBuffer();
      p1.set(newDatabasePage1(pageSize));
      p1.writeUInt32BE(k, 24); // the change counter
      p1.writeUInt32BE(2, 28); // the in-header size
      const p2 = pipeline.pageBuffer().fill(k);
      committed = Buffer.from(p1);
      await pipeline.sequence([{ pgno: 1, data: p1 }, { pgno: 2, data: p2 }], 2, view);
      pipeline.releaseView(view);
    }
    const view = pipeline.tryOpenView(false)!;
    const out = Buffer.alloc(pageSize);
    pipeline.readPage(view, 1, out);
    expect(out.equals(committed!)).toBe(true);
    pipeline.releaseView(view);
  } finally {
    await pipeline.drain();
    await store.close();
  }
});
