// Builds the LD_PRELOAD shim test/helpers/tear-header-shim.c (a sqlite3 process that loads it is
// killed between its wal-index header's two copies) with the system's C compiler, for the tests
// of a header torn by a dead writer. Where no compiler builds it, those tests skip with `error`.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { HELPERS } from './children';

/** The shim built into `dir`: its path, and null or why it could not be built. */
export function buildTearHeaderShim(dir: string): { path: string; error: string | null } {
  const shim = path.join(dir, 'tear-header-shim.so');
  try {
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', shim, path.join(HELPERS, 'tear-header-shim.c'), '-ldl'], { stdio: 'pipe' });
    return { path: shim, error: null };
  } catch (e) {
    return { path: shim, error: `cc could not build the LD_PRELOAD shim: ${(e as Error).message}` };
  }
}
