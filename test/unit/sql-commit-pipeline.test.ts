// CommitPipeline.sequence()'s promise is always handled (the pipeline's bookkeeping is its
// first handler), so its caller may drop it: the VFS adds no handler of its own. The one
// promise it makes before its bookkeeping — a commit after a failure, before recovery — was a
// bare Promise.reject: dropped, an unhandled rejection.
import * as path from 'node:path';
import { expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
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
