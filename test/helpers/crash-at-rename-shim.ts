// Builds the LD_PRELOAD shim test/helpers/crash-at-rename-shim.c (a process that loads it is
// SIGKILLed just before its Nth rename, link or unlink inside one directory) with the system's C
// compiler, for the crash-point tests of a file replacement. Where no compiler builds it, those
// tests skip with `error`.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { HELPERS } from './children';

/** The shim built into `dir`: its path, and null or why it could not be built. */
export function buildCrashAtRenameShim(dir: string): { path: string; error: string | null } {
  const shim = path.join(dir, 'crash-at-rename-shim.so');
  try {
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', shim, path.join(HELPERS, 'crash-at-rename-shim.c'), '-ldl'], { stdio: 'pipe' });
    return { path: shim, error: null };
  } catch (e) {
    return { path: shim, error: `cc could not build the LD_PRELOAD shim: ${(e as Error).message}` };
  }
}
