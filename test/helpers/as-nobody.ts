// Running the walnut CLI as another user (nobody, through setpriv), for the tests of files a
// user may not write: only where the tests run as root with setpriv installed and nobody can
// read this checkout (a clone under a 0700 directory cannot be run by another user).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { spawnOutput } from './children';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const NOBODY = ['--reuid=nobody', '--regid=nogroup', '--clear-groups'];

/** `walnut ...args` run as nobody. */
export const asNobody = (...args: string[]) => spawnOutput('setpriv', [...NOBODY, process.execPath, BIN, ...args]);

/** Null where walnut can run as nobody here, else why not (a test's skip reason). */
export function nobodySkip(): string | null {
  if (process.getuid?.() !== 0 || !fs.existsSync('/usr/bin/setpriv')) return 'needs root and setpriv to run as nobody';
  const r = spawnSync('setpriv', [...NOBODY, process.execPath, BIN, '--version'], { stdio: 'pipe' });
  return r.status === 0 ? null : 'user nobody cannot run this checkout of walnut (a directory above it is closed to others)';
}
