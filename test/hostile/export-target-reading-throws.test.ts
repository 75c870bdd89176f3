// store.exportTo() given a target whose reading throws: a Proxy whose traps throw, a Writable-like
// object whose `on` is a throwing getter, or one whose `fd` is a number that is no open descriptor
// (refuseExportTarget's fstat fails EBADF). Each escaped as the raw Error (no WalnutError, no
// code), where an options object's throwing getter was already WALNUT_INVALID_ARGUMENT
// (input-getters.test.ts). Now each is WALNUT_INVALID_ARGUMENT, reason 'target', the original as
// `cause`, thrown by exportTo() before any export starts; the store exports afterwards as before.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/index';
import { expectWalnutError } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('an export target whose reading throws', () => {
  it('is WALNUT_INVALID_ARGUMENT (reason target, the original as cause), and the store exports afterwards', async () => {
    const store = await open(path.join(dir, 'a.db'), { pageSize: 1024, autoCheckpoint: false });
    try {
      const trap = new Error('the trap');
      const proxy = new Proxy({}, { get: () => { throw trap; } });
      expect(expectWalnutError(() => store.exportTo(proxy as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'target' }).cause).toBe(trap);
      const onThrows = Object.defineProperty({ write: () => true, once: () => undefined }, 'on', { get: () => { throw trap; } });
      expect(expectWalnutError(() => store.exportTo(onThrows as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'target' }).cause).toBe(trap);
      const noDescriptor = { write: () => true, once: () => undefined, on: () => undefined, off: () => undefined, fd: 2 ** 30 };
      const err = expectWalnutError(() => store.exportTo(noDescriptor as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'target' });
      expect((err.cause as NodeJS.ErrnoException).code).toBe('EBADF');

      const out = path.join(dir, 'after.ark');
      const sink = fs.createWriteStream(out);
      await store.exportTo(sink).done;
      await new Promise<void>((resolve) => sink.end(resolve));
      expect(fs.statSync(out).size).toBeGreaterThan(1024);
    } finally {
      await store.close();
    }
  });
});
