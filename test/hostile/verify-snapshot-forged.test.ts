// verifySnapshot() told a store's snapshot from anything else with `instanceof Snapshot`, which
// any object whose prototype chain holds Snapshot.prototype passes (Object.create, a subclass
// instance never constructed by a store, { __proto__: snap }): the check then ran and failed on
// the first private field with a raw TypeError ("Cannot read private member #index"), no
// WalnutError; a Proxy whose getPrototypeOf trap throws escaped with that trap's error. It now
// asks the object whether it is one (a private-field brand check, which runs none of the
// caller's code): anything else is WALNUT_INVALID_ARGUMENT, reason 'snapshot'.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, Snapshot, verifySnapshot } from '../../lib/index';
import { expectWalnutError } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

describe('verifySnapshot with something that only looks like a snapshot', () => {
  it('is WALNUT_INVALID_ARGUMENT reason snapshot; a real one is still checked', async () => {
    const file = path.join(tmpDir(), 'app.db');
    const store = await open(file, { autoCheckpoint: false });
    try {
      const snap = await store.snapshot();
      try {
        const forged: unknown[] = [
          Object.create(Snapshot.prototype),
          Object.create(snap),
          new Proxy({}, { getPrototypeOf: () => { throw new TypeError('trap'); } }),
          new Proxy(snap, {}),
        ];
        for (const f of forged) expectWalnutError(() => verifySnapshot(f as Snapshot, 5), 'WALNUT_INVALID_ARGUMENT', { reason: 'snapshot' });
        expect(verifySnapshot(snap, 5).ok).toBe(true);
      } finally {
        snap.release();
      }
    } finally {
      await store.close();
    }
    expect(fs.existsSync(file)).toBe(true);
  });
});
