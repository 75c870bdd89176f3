// Fuzz cases of verify and of FEC recovery inside npm test (the long run is `npm run fuzz`):
// never an exception other than WalnutError, never a hang, and recovery (repaired or not)
// always leaves a database SQLite's integrity_check accepts.
import { describe, expect, it } from 'vitest';

import { memoryTmpDir } from '../helpers/tmp';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { fuzzVerify, fuzzFecRecovery } = require('./verify-fuzz.js') as {
  fuzzVerify(o: { cases: number; seed: number; dir: string }): Promise<{ failures: { case: number; problem: string }[]; outcomes: { ok: number; findings: number; refused: number } }>;
  fuzzFecRecovery(o: { cases: number; seed: number; dir: string }): Promise<{ failures: { case: number; problem: string }[]; outcomes: { repaired: number; fellBack: number; clean: number } }>;
};

describe('verify and FEC recovery fuzz', () => {
  it('600 mutated databases through verify at random levels', async () => {
    const r = await fuzzVerify({ cases: 600, seed: 20261123, dir: memoryTmpDir('walnut-vfuzz-') });
    expect(r.failures).toEqual([]);
    expect(r.outcomes.findings).toBeGreaterThan(300);
  });

  it('120 mutated WALs and sidecars through FEC recovery', async () => {
    const r = await fuzzFecRecovery({ cases: 120, seed: 20261123, dir: memoryTmpDir('walnut-ffuzz-') });
    expect(r.failures).toEqual([]);
    expect(r.outcomes.repaired).toBeGreaterThan(10);
    console.log('fec recovery fuzz outcomes', JSON.stringify(r.outcomes));
  }, 600_000); // longer than the 5-minute default: 161 s at load 23
});
