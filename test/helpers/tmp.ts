// Temporary directories for tests: real files on a real file system, removed after the file's
// tests. tmpDir() is on the disk (os.tmpdir()): where a test's subject is durability, fsync, a
// crash or a full disk, it must be there. memoryTmpDir() is in memory (tmpfs, /dev/shm): the fuzz
// files and the export truncation / flipped-bit loops make thousands of throwaway databases and
// streams, and their subject is parsing and recovery, not the disk; on the VM's disk their
// fsyncs were most of their time. Still real files, real open/write/fsync/rename: only the
// medium differs. Where /dev/shm is missing or not writable it falls back to tmpDir().
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const made: string[] = [];

export function tmpDir(prefix = 'walnut-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Where memory-backed directories go: /dev/shm where it is a writable directory, else null (probed once). */
let memoryRoot: string | null | undefined;

function probeMemoryRoot(): string | null {
  try {
    fs.accessSync('/dev/shm', fs.constants.W_OK | fs.constants.X_OK);
    return fs.statSync('/dev/shm').isDirectory() ? '/dev/shm' : null;
  } catch {
    return null; // missing (not Linux) or not ours to write
  }
}

/** A fresh directory in memory (/dev/shm), for throwaway files whose subject is not the disk; tmpDir() where there is none. */
export function memoryTmpDir(prefix = 'walnut-test-'): string {
  if (memoryRoot === undefined) memoryRoot = probeMemoryRoot();
  if (memoryRoot === null) return tmpDir(prefix);
  let dir: string;
  try {
    dir = fs.mkdtempSync(path.join(memoryRoot, prefix));
  } catch {
    return tmpDir(prefix); // writable by mode but refused all the same (a read-only mount, a full tmpfs)
  }
  made.push(dir);
  return dir;
}

/**
 * Removes every directory made since the last call: after each test file (test/setup-cleanup.ts,
 * a vitest setup file). Not a hook of this module's own: the two forks run file after file
 * (isolate: false) and load this module once, so its hook ran after the first file only and
 * every later file's directories stayed (80 GB of /tmp in one day's runs: the disk filled).
 */
export function removeTmpDirs(): void {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}
