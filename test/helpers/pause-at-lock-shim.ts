// Builds the LD_PRELOAD shim test/helpers/pause-at-lock-shim.c (a process that loads it stops
// just before its first OFD lock on a file whose path holds a given name, until told to go) with
// the system's C compiler, for race tests of restore's temporary files. Where no compiler builds
// it, those tests skip with `error`.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { HELPERS } from './children';

/** The shim built into `dir`: its path, and null or why it could not be built. */
export function buildPauseAtLockShim(dir: string): { path: string; error: string | null } {
  const shim = path.join(dir, 'pause-at-lock-shim.so');
  try {
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', shim, path.join(HELPERS, 'pause-at-lock-shim.c'), '-ldl'], { stdio: 'pipe' });
    return { path: shim, error: null };
  } catch (e) {
    return { path: shim, error: `cc could not build the LD_PRELOAD shim: ${(e as Error).message}` };
  }
}
