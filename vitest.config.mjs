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
// python3: tests start it hundreds of times (sqlite3 peers, fills, checks). Where `python3` on
// PATH is a pyenv shim, every start first runs `pyenv exec` (a tree of bash processes: 0.3 s
// quiet, 2-3 s at load 10), which finds the selected version's bin directory and puts it first
// on PATH; done once here for the whole run, the same interpreter starts directly.
// lib/: tests import '../../lib/...' for its types, and run what ships: dist/ (the CommonJS build
// `npm test` makes first, its pretest), loaded by Node itself (server.deps.external), not
// transformed and fetched module by module by vitest's runner in every fork. Each test file
// runs in a fresh fork, so that load was paid ~400 times a run: ~0.5-1 s a file, a quarter of
// npm test's wall time on 2 cores. One copy of the module graph, too: the worker threads,
// child processes and the CLI that tests start load dist/, and a WalnutError made by one copy
// is no `instanceof` the other's class. test/dist-fresh.mjs refuses a dist/ older than lib/.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { defineConfig } from 'vitest/config';

const dist = path.resolve(__dirname, 'dist');

/** The directory of the python3 that `python3` on PATH runs in the end (through a pyenv shim or not), or null without python3. */
function python3Dir() {
  try {
    return path.dirname(execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim());
  } catch {
    return null; // the tests that need python3 say so
  }
}

const pythonDir = python3Dir();
if (pythonDir) process.env.PATH = `${pythonDir}${path.delimiter}${process.env.PATH ?? ''}`;

export default defineConfig({
  resolve: { alias: [{ find: /^(?:\.\.\/)+lib(\/.*)?$/, replacement: `${dist}$1` }] },
  test: {
    globalSetup: ['test/dist-fresh.mjs'],
    server: { deps: { external: [/\/dist\//] } },
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    teardownTimeout: 60_000,
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
