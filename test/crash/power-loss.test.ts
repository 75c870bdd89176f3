// The power-loss model in small (the long run is `npm run test:power-loss`): damaged copies of
// a WAL at every sync point, torn at 512- and 4096-byte sectors or zero-filled; recovery keeps
// every synced commit and nothing torn.
import { describe, expect, it } from 'vitest';

import { tmpDir } from '../helpers/tmp';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { powerLossCases } = require('./power-loss.js') as {
  powerLossCases(o: { cases: number; seed: number; dir: string }): { histories: number; failures: { problem: string }[] };
};

describe('power-loss model', () => {
  it('400 damaged WALs: every synced commit recovered, no torn frame accepted', () => {
    const r = powerLossCases({ cases: 400, seed: 4242, dir: tmpDir('walnut-power-') });
    expect(r.failures).toEqual([]);
    expect(r.histories).toBeGreaterThanOrEqual(8);
  });
});
