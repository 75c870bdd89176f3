// test/dist-fresh.mjs — vitest's global setup: the tests run dist/ (vitest.config.mjs), so a
// dist/ older than any file of lib/ would test code that is not the source's. `npm test` builds
// it first (pretest); a run of vitest alone after an edit is told to build, not given old code.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The newest modification time (ms) of the files under `dir`. */
function newest(dir) {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }
  return t;
}

export default function distFresh() {
  const built = path.join(root, 'dist', 'index.js');
  if (!fs.existsSync(built)) throw new Error('dist/ is missing: the tests run the build (npm run build:ts, or npm test, which builds first)');
  const source = newest(path.join(root, 'lib'));
  if (source > fs.statSync(built).mtimeMs) throw new Error('dist/ is older than lib/: the tests run the build (npm run build:ts, or npm test, which builds first)');
}
