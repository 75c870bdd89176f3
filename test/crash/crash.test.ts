// Proof of the commit promise, in small: a child commits and is SIGKILLed at a random moment;
// after reopening, every acknowledged commit is there, exactly, and no transaction is torn.
// The long run is `npm run test:crash -- --trials 1000`.
import { describe, expect, it } from 'vitest';

import { tmpDir } from '../helpers/tmp';
import { seededRandom } from '../helpers/wal-damage';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { trial } = require('./trials.js') as {
  trial(o: { dir: string; index: number; rand: (n: number) => number }): Promise<{ acked: number; problems: string[] }>;
};

describe('SIGKILL crash trials', () => {
  it('30 trials (full and normal, 1 to 64 committers, background checkpoints)', async () => {
    const dir = tmpDir('walnut-crash-');
    const rand = seededRandom(20261122);
    let acked = 0;
    const problems: string[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await trial({ dir, index: i, rand });
      acked += r.acked;
      problems.push(...r.problems.map((p) => `trial ${i}: ${p}`));
    }
    expect(problems).toEqual([]);
    expect(acked).toBeGreaterThan(100); // the trials really committed before dying
  }, 240_000);
});
