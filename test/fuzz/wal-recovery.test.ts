// A few thousand fuzz cases of the WAL recovery scan inside npm test (the long run is
// `npm run fuzz`): every outcome equals the independent oracle or is the right WalnutError.
import { describe, expect, it } from 'vitest';

import { memoryTmpDir } from '../helpers/tmp';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { fuzzWalRecoveryAsync } = require('./wal-fuzz.js') as {
  fuzzWalRecoveryAsync(o: { cases: number; seed: number; dir: string }): Promise<{
    cases: number;
    failures: { case: number; what: string; problem: string }[];
    outcomes: { empty: number; noCommit: number; frames: number; cantopen: number };
  }>;
};

describe('WAL recovery fuzz', () => {
  for (const seed of [1, 2, 3]) {
    it(`1,200 random and mutated WALs agree with the oracle (seed ${seed})`, async () => {
      const r = await fuzzWalRecoveryAsync({ cases: 1200, seed, dir: memoryTmpDir('walnut-fuzz-') });
      expect(r.failures).toEqual([]);
      // the inputs reach deep into the scan, not just the header check
      expect(r.outcomes.empty).toBeGreaterThan(100);
      expect(r.outcomes.frames).toBeGreaterThan(200);
    });
  }
});
