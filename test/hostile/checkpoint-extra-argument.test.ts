// store.checkpoint(mode) takes no options, yet checkpoint('truncate', { busyTimeout: 10000 })
// ran a truncate with the options silently dropped, as a misspelt option name would be (every
// verb refuses an option name it does not take: option-names.ts). Now refused before anything
// runs; undefined (an argument passed on as it came) is no argument.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('store.checkpoint with more than a mode', () => {
  it('is refused (WALNUT_INVALID_ARGUMENT, reason options), the WAL untouched; undefined is no argument', async () => {
    const store = await open(path.join(dir, 'a.db'), { pageSize: 1024, autoCheckpoint: false });
    try {
      await store.commit([{ pgno: 2, data: Buffer.alloc(1024, 1) }]);
      const checkpoint = store.checkpoint.bind(store) as (...args: unknown[]) => ReturnType<typeof store.checkpoint>;
      for (const extra of [{ busyTimeout: 10_000 }, () => undefined, 'full']) {
        const err = await expectRejectsWalnut(checkpoint('truncate', extra), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
        expect(err.message).toContain('checkpoint takes only a mode');
      }
      expect(store.metrics().walFrames).toBe(1); // nothing ran
      expect(await checkpoint('passive', undefined)).toMatchObject({ mode: 'passive', busy: false, walFrames: 1, checkpointedFrames: 1 });
    } finally {
      await store.close();
    }
  });
});
