// Proof of the commit promise, in small: a child commits and is SIGKILLed at a random moment of its committing;
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
    // each trial is killed only once it has acknowledged a commit, and says so if it had none
    // (trials.js): how many a trial gets in its random delay is the machine's speed, printed
    console.log(`crash trials: 30 trials, ${acked} acknowledged commits checked`);
    expect(problems).toEqual([]);
  }, 600_000); // longer than the 5-minute default: 135-168 s at load 15-20
});
