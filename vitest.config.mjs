// vitest: forks pool (native addons load reliably in child processes), two forks that each run file after file (isolate: false, below).
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
// transformed and fetched module by module by vitest's runner for every file. When each test
// file ran in a fresh fork, that load was paid ~400 times a run: ~0.5-1 s a file, a quarter of
// npm test's wall time on 2 cores. One copy of the module graph, too: the worker threads,
// child processes and the CLI that tests start load dist/, and a WalnutError made by one copy
// is no `instanceof` the other's class. test/dist-fresh.mjs refuses a dist/ older than lib/.
// dist/ through require(): a test's import of '../../lib/x' is a small module (distRequire below)
// that require()s dist/x.js and exports its names. An external import() of the CommonJS file
// went through Node's ESM loader, which translates each module of the graph (source parsed
// again for its export names, every require() inside it through the loader): ~120 ms more per
// test file than require() (measured in a fork: lib/index + lib/sql 210-370 ms against
// 90-240 ms), in each of ~430 fresh forks a run (before isolate: false). Same module graph, same copy (require's cache),
// the same names and values an import gave (a CommonJS module's are read once, at its import).
// The names are Object.keys of each module's exports, read once a run by one node process.
// isolate: false: the two forks live for the whole run and each runs file after file (vitest
// still loads each test file and its helpers anew; dist/ and the addon stay loaded). A fresh
// fork per file cost its start, vitest's worker set-up and the environment each time: one full
// run on this 2-core VM took 654 s with a fork per file and 555 s with two (the files' own time
// the same, 1,080 and 1,091 s). A test file must leave nothing behind that changes another's:
// process-wide state a helper keeps is on globalThis (test/helpers/pause-worker.ts).
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
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

/** Each dist/ module's export names (file -> Object.keys of its exports), read by one node process; null without a loadable dist/ (dist-fresh.mjs says why). */
function distExportNames() {
  const script = `
    const fs = require('node:fs');
    const path = require('node:path');
    const names = {};
    (function walk(dir) {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.js')) {
          try {
            names[p] = Object.keys(require(p));
          } catch {} // left to the plain import (the same error there, in the test that imports it)
        }
      }
    })(process.argv[1]);
    process.stdout.write(JSON.stringify(names));
    process.exit(0);`;
  try {
    return JSON.parse(execFileSync(process.execPath, ['-e', script, dist], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 120_000, maxBuffer: 16 << 20 }));
  } catch {
    return null;
  }
}

const SHIM = '\0walnut-dist:';

/** '../../lib/x' (by then aliased to dist/x) as a module that require()s dist/x.js and exports its names (see the header). */
function distRequire() {
  const names = distExportNames();
  const resolve = createRequire(import.meta.url).resolve;
  return {
    name: 'walnut-dist-require',
    enforce: 'pre',
    resolveId(source) {
      if (names === null || (source !== dist && !source.startsWith(`${dist}/`))) return null;
      let file;
      try {
        file = resolve(source);
      } catch {
        return null;
      }
      return file in names ? SHIM + path.relative(dist, file) : null;
    },
    load(id) {
      if (!id.startsWith(SHIM)) return null;
      const file = path.join(dist, id.slice(SHIM.length));
      const exported = names[file].filter((n) => /^[A-Za-z_$][\w$]*$/.test(n) && n !== 'default' && n !== '__esModule');
      return [
        "import { createRequire } from 'node:module';",
        `const m = createRequire(${JSON.stringify(file)})(${JSON.stringify(file)});`,
        'export default m;',
        ...exported.map((n, i) => `const e${i} = m[${JSON.stringify(n)}];`),
        `export { ${exported.map((n, i) => `e${i} as ${n}`).join(', ')} };`,
      ].join('\n');
    },
  };
}

const pythonDir = python3Dir();
if (pythonDir) process.env.PATH = `${pythonDir}${path.delimiter}${process.env.PATH ?? ''}`;

export default defineConfig({
  plugins: [distRequire()],
  resolve: { alias: [{ find: /^(?:\.\.\/)+lib(\/.*)?$/, replacement: `${dist}$1` }] },
  test: {
    globalSetup: ['test/dist-fresh.mjs', 'test/sweep-mounts.mjs'],
    setupFiles: ['test/setup-cleanup.ts'],
    server: { deps: { external: [/\/dist\//] } },
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    teardownTimeout: 60_000,
    poolOptions: { forks: { maxForks: 2, minForks: 1, isolate: false } },
  },
});
