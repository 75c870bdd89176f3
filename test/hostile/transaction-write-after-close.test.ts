// README: "close() refuses every later call with WALNUT_CLOSED". A transaction's write() did not
// look at close(): as the first call after store.close() it was taken without a word (the
// transaction then failed only at commit()), and after a read() refused with WALNUT_CLOSED it
// was WALNUT_INVALID_ARGUMENT "the transaction has already ended". Now write() after close()
// has begun is WALNUT_CLOSED, as read() and commit() are, and the transaction ends there (its
// read mark goes: close() completes); what was committed before is all there after a reopen.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, WalnutError } from '../../lib/index';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PS = 1024;

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(WalnutError);
    return (e as WalnutError).code;
  }
  return undefined;
}

describe('tx.write() after store.close()', () => {
  it('is WALNUT_CLOSED whether it is the first call after close() or follows a refused read', async () => {
    const db = path.join(dir, 'a.db');
    const store = await open(db, { pageSize: PS });
    await store.commit([{ pgno: 2, data: Buffer.alloc(PS, 1) }]);
    const first = store.begin();
    const afterRead = store.begin();
    const ended = store.begin();
    ended.write(2, Buffer.alloc(PS, 2));
    await ended.commit();
    const closing = store.close();
    expect(codeOf(() => first.write(2, Buffer.alloc(PS, 9)))).toBe('WALNUT_CLOSED'); // was taken
    await expect(afterRead.read(2)).rejects.toMatchObject({ code: 'WALNUT_CLOSED' });
    expect(codeOf(() => afterRead.write(2, Buffer.alloc(PS, 9)))).toBe('WALNUT_CLOSED'); // was INVALID_ARGUMENT
    expect(codeOf(() => ended.write(2, Buffer.alloc(PS, 9)))).toBe('WALNUT_CLOSED');
    await expect(first.commit()).rejects.toMatchObject({ code: 'WALNUT_CLOSED' });
    await closing;
    const again = await open(db);
    const snap = await again.snapshot();
    expect((await snap.read(2))[0]).toBe(2);
    snap.release();
    await again.close();
  });
});
