// A page number a caller can get wrong in every way is refused with WALNUT_INVALID_ARGUMENT
// (reason pgno) by a snapshot's and a transaction's reads: a Symbol threw a TypeError ("Cannot
// convert a Symbol value to a string") from the refusal's own message.
import * as path from 'node:path';
import { describe, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('snapshot and transaction reads of a page number that is no number', () => {
  it('a Symbol, a BigInt, NaN, 0, 2^32 and a string are WALNUT_INVALID_ARGUMENT (pgno), synchronously and not', async () => {
    const store = await open(path.join(dir, 'symbol.db'));
    try {
      const snap = await store.snapshot();
      const tx = store.begin();
      const out = Buffer.alloc(store.pageSize);
      for (const pgno of [Symbol('page'), 1n, NaN, 0, 2 ** 32, '1'] as unknown as number[]) {
        await expectRejectsWalnut(snap.read(pgno), 'WALNUT_INVALID_ARGUMENT', { reason: 'pgno' });
        await expectRejectsWalnut(snap.readRaw(pgno), 'WALNUT_INVALID_ARGUMENT', { reason: 'pgno' });
        await expectRejectsWalnut(snap.readInto(pgno, out), 'WALNUT_INVALID_ARGUMENT', { reason: 'pgno' });
        expectWalnutError(() => snap.readSync(pgno), 'WALNUT_INVALID_ARGUMENT', { reason: 'pgno' });
        expectWalnutError(() => snap.readIntoSync(pgno, out), 'WALNUT_INVALID_ARGUMENT', { reason: 'pgno' });
        await expectRejectsWalnut(tx.read(pgno), 'WALNUT_INVALID_ARGUMENT', { reason: 'pgno' });
      }
      snap.release();
      await tx.commit(); // read-only: nothing to write
    } finally {
      await store.close();
    }
  });
});
