// Builds the LD_PRELOAD shim test/helpers/claim-rt-signal-shim.c (claims SIGRTMIN+5, the signal
// walnut's blocking lock waits end by, at start or later on cue) with the system's C compiler.
// Where no compiler builds it, the tests that need it skip.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { HELPERS } from './children';

/** The shim built into `dir`: its path, or null when it could not be built. */
export function buildClaimRtSignalShim(dir: string): string | null {
  const shim = path.join(dir, 'claim-rt-signal-shim.so');
  try {
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', shim, path.join(HELPERS, 'claim-rt-signal-shim.c'), '-lpthread'], { stdio: 'pipe' });
    return shim;
  } catch {
    return null;
  }
}
