// vitest: forks pool (native addons load reliably in child processes), one file per fork.
// One timeout for every test and hook, 5 minutes: a hang detector, not a speed check. Tests'
// own 20-240 s timeouts failed them on a loaded machine (2 cores at load 12-19 ran the suite 8x
// slower than quiet, tests of a few seconds ran into 60 s), so no test sets a shorter one; only
// those that took over half of it loaded set a longer one (npm pack + install, which compiles;
// the crash trials, the export fuzz, the FEC recovery fuzz, the integrity differential).
// teardownTimeout (vitest's wait for its pool to close, 10 s by default) is a minute: closing two
// forks on a loaded machine needs the margin. A worker's RPC to the main process times out after 60 s (not
// configurable): no test may hold its event loop that long, so tests await their child processes
// (test/helpers/children.ts spawnOutput) and long synchronous loops yield (wal-fuzz.js steps).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    teardownTimeout: 60_000,
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
