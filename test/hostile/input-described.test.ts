// A refusal's message names the value it refuses; made with String(value), a Proxy's traps ran
// (and threw) and a detached typed array threw a TypeError (%TypedArray%.prototype.join), so the
// caller got that TypeError, not the verb's WalnutError, and store.whenDurable threw it
// synchronously instead of rejecting. WalnutFile.open's option-name check ran a Proxy's ownKeys
// outside its input guard. Now every one is WALNUT_INVALID_ARGUMENT, as a rejection.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, WalnutError, WalnutFile } from '../../lib/index';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

function detached(): Uint8Array {
  const b = new Uint8Array(16);
  structuredClone(b.buffer, { transfer: [b.buffer] });
  return b;
}
const trapping = (): object =>
  new Proxy({}, {
    get() {
      throw new Error('trap');
    },
    ownKeys() {
      throw new Error('trap');
    },
  });

/** How `call` failed: 'threw' (synchronously), or the rejection's code ('not a WalnutError' otherwise). */
async function failure(call: () => Promise<unknown>): Promise<string> {
  let p: Promise<unknown>;
  try {
    p = call();
  } catch {
    return 'threw';
  }
  return p.then(
    () => 'resolved',
    (e) => (e instanceof WalnutError ? e.code : 'not a WalnutError'),
  );
}

describe('bad inputs that break String()', () => {
  it('page numbers, tickets and options of every shape are WALNUT_INVALID_ARGUMENT rejections', async () => {
    const store = await open(path.join(dir, 'a.db'));
    await store.commit([{ pgno: 2, data: Buffer.alloc(4096, 1) }]);
    const snap = await store.snapshot();
    const seen: Record<string, string> = {};
    for (const [name, bad] of [['detached', detached], ['proxy', trapping]] as const) {
      seen[`whenDurable ${name}`] = await failure(() => store.whenDurable(bad() as never));
      seen[`tx.read ${name}`] = await failure(() => store.begin().read(bad() as never));
      seen[`snapshot.read ${name}`] = await failure(() => snap.read(bad() as never));
      seen[`snapshot.readInto ${name}`] = await failure(() => snap.readInto(bad() as never, Buffer.alloc(4096)));
    }
    seen['WalnutFile.open proxy'] = await failure(() => WalnutFile.open(path.join(dir, 'f'), trapping() as never));
    snap.release();
    await store.close();
    expect(Object.entries(seen).filter(([, v]) => v !== 'WALNUT_INVALID_ARGUMENT')).toEqual([]);
  });
});
