// What a commit asks of the kernel, counted with strace in a real child process (issue #19):
// no stat of any kind on the commit path (on ext4 with multigrain timestamps a stat makes the
// next fdatasync write the inode too: reference/commit-profile.md).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { HELPERS } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;
const hasStrace = spawnSync('strace', ['-V']).status === 0;

/** System calls (name -> count) the child made between its markers, every thread included. */
function commitSyscalls(options: Record<string, unknown>, lone: number, rounds: number, width: number): { calls: Map<string, number>; batches: number } {
  const file = path.join(dir, `s${n}.db`);
  const trace = path.join(dir, `s${n++}.strace`);
  const r = spawnSync('strace', ['-f', '-qq', '-o', trace, '-e', 'trace=%%stat,fcntl,lseek,write,pwrite64,pwritev,fdatasync', process.execPath, path.join(HELPERS, 'commit-syscalls-child.js'), file, String(lone), String(rounds), String(width), JSON.stringify(options)], { encoding: 'utf8' });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  const lines = fs.readFileSync(trace, 'utf8').split('\n');
  const from = lines.findIndex((l) => l.includes('<<commits>>'));
  const to = lines.findIndex((l) => l.includes('<</commits>>'));
  expect(from).toBeGreaterThan(0);
  expect(to).toBeGreaterThan(from);
  const calls = new Map<string, number>();
  for (const l of lines.slice(from + 1, to)) {
    const m = /^\d+\s+(?:<\.\.\. )?(\w+)/.exec(l);
    if (m) calls.set(m[1]!, (calls.get(m[1]!) ?? 0) + 1);
  }
  return { calls, batches: JSON.parse(r.stdout).batches };
}

const stats = (calls: Map<string, number>): number => [...calls].filter(([name]) => /stat/.test(name)).reduce((a, [, c]) => a + c, 0);

describe.skipIf(!hasStrace)('the commit path under strace', () => {
  it('makes no stat call (fstat, statx, newfstatat) on the WAL, the -shm or the database file', () => {
    const { calls } = commitSyscalls({ autoCheckpoint: false }, 20, 10, 16);
    expect(calls.get('fdatasync')).toBeGreaterThanOrEqual(30); // the commits were traced
    expect(stats(calls)).toBe(0);
  }, 60_000);
});
