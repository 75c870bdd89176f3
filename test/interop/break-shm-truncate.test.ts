// Another process truncating the -shm under an open store (a hostile or buggy user of the files):
// every touch of the lost pages is WALNUT_CORRUPT (reason ShmTruncated), never SIGBUS, also where
// no size check runs (a held snapshot's synchronous lookups, the microseconds after a check:
// native/shm_guard.h). Run in a child process: a SIGBUS would end it, not the test runner.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { HELPERS, runNode } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const child = path.join(HELPERS, 'shm-truncate-child.js');

/** The child's report: error code/reason -> count; every key must be a WalnutError's (or a page read back: 'page N=V'). */
async function run(name: string, ...args: string[]): Promise<Record<string, number>> {
  const r = await runNode(child, [path.join(dir, `${name}.db`), ...args], { WALNUT_FAULT_INJECTION: '1' });
  expect(r.code, `exit code (null: killed by a signal, SIGBUS)\n${r.stderr}`).toBe(0);
  const seen = JSON.parse(r.stdout.trim()) as Record<string, number>;
  expect(Object.keys(seen).filter((k) => !k.startsWith('WALNUT_') && !k.startsWith('page '))).toEqual([]);
  return seen;
}

describe('the -shm truncated by another process', () => {
  it("while a snapshot is held: its synchronous lookups are WALNUT_CORRUPT (ShmTruncated); release and close work", async () => {
    const seen = await run('held', 'held');
    expect(seen).toEqual({ 'WALNUT_CORRUPT/ShmTruncated': 2 });
  });

  it('between a batch\'s sync and its publish: the batch fails, its frames are invalidated, a reopen shows the earlier commits', async () => {
    // commit i of the first 100 wrote page 2 + (i % 40) = i: pages 2, 3, 4 hold 80, 81, 82
    const seen = await run('publish', 'publish');
    expect(seen).toEqual({ 'WALNUT_FAILED': 3, 'page 2=80': 1, 'page 3=81': 1, 'page 4=82': 1 });
  });

  it('every half millisecond while stores open, commit and checkpoint: WalnutErrors only, the process lives', async () => {
    const seen = await run('storm', 'storm', '2');
    expect(seen['WALNUT_CORRUPT/ShmTruncated']).toBeGreaterThan(0);
  });
});
