// A connection's checkpoints run on descriptors of their own (the background I/O lane), opened at
// the first checkpoint. A failed open of them (EMFILE here) was kept: the rejected promise stayed
// cached, so every later checkpoint of that connection failed with the same error, for good. Now a
// failed open is not kept (the next checkpoint opens again) and the descriptor of the pair that
// did open is closed.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { HELPERS, runJsonChild } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

interface Outcome { ok: boolean; code?: string; errno?: number; syscall?: string; busy?: boolean; walFrames?: number; checkpointedFrames?: number }

describe('a checkpoint whose background descriptors cannot be opened', () => {
  for (const [nth, which] of [[1, 'database'], [2, 'WAL']] as const) {
    it(`fails with that error, and the next checkpoint opens them again and runs (the ${which}'s open fails)`, async () => {
      const out = await runJsonChild<{ first: Outcome; second: Outcome; fdsBefore: number; fdsAfter: number }>(
        path.join(HELPERS, 'background-open-fault-child.js'), [path.join(dir, `${which}.db`), String(nth)], { WALNUT_FAULT_INJECTION: '1' });
      expect(out.first).toMatchObject({ ok: false, code: 'WALNUT_IO', errno: 24, syscall: 'open' });
      expect(out.second).toEqual({ ok: true, busy: false, walFrames: 5, checkpointedFrames: 5 });
      expect(out.fdsAfter).toBe(out.fdsBefore);
    });
  }
});
