// A few thousand fuzz cases of the export reader and restore inside npm test (the long run is
// `npm run fuzz`): no crash, every failure a WalnutError, every restore a sound database.
import { describe, expect, it } from 'vitest';

import { memoryTmpDir } from '../helpers/tmp';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { fuzzExport } = require('./export-fuzz.js') as {
  fuzzExport(o: { cases: number; seed: number; dir: string }): Promise<{ failures: { case: number; problem: string }[]; outcomes: { restored: number; rejected: number } }>;
};

describe('export stream fuzz', () => {
  it('2,000 random and mutated streams', async () => {
    const r = await fuzzExport({ cases: 2000, seed: 7, dir: memoryTmpDir('walnut-xfuzz-') });
    expect(r.failures).toEqual([]);
    expect(r.outcomes.restored).toBeGreaterThan(200);
    expect(r.outcomes.rejected).toBeGreaterThan(200);
  }, 600_000); // longer than the 5-minute default: 175 s at load 15
});
