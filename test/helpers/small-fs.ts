// Small real file systems for full-disk tests: a tmpfs of a given size, or an ext4 image on a
// loop device, mounted under a temporary directory (root only). MOUNT_SKIP is null where
// mounting works, else why not (checked once, by mounting a 64 KiB tmpfs), so that tests skip
// with that message instead of failing; ext4Skip() likewise for loop-mounted ext4 (mkfs.ext4 and
// a loop device), probed only when a file asks (it makes and mounts an image: 12 of the 14
// files that import this never use one). Every mount is lazily unmounted after the file's tests (umount -l), also when
// a test failed; one left by a killed run (its directory names the pid that made it) is
// unmounted by the next run's global setup (test/sweep-mounts.mjs).
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const mounted: string[] = [];
const images: string[] = [];

function probeMount(): string | null {
  if (process.platform !== 'linux') return 'full-disk tests need Linux (tmpfs mounts)';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `walnut-mount-probe-${process.pid}-`));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    return `mounting a tmpfs is not permitted here (${String((e as Error).message).split('\n')[0]}): full-disk tests skipped`;
  }
  try {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
  } catch {
    // nothing more to do: the probe is empty
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return null;
}

export const MOUNT_SKIP: string | null = probeMount();

/** A new directory holding a tmpfs of `size` (mount's size=, e.g. '2m'), unmounted after the file's tests. */
export function smallTmpfs(size: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `walnut-small-fs-${process.pid}-`));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  mounted.push(dir);
  return dir;
}

function probeExt4(): string | null {
  if (MOUNT_SKIP !== null) return MOUNT_SKIP;
  try {
    const dir = smallExt4('1M');
    void dir;
    return null;
  } catch (e) {
    return `mounting an ext4 image on a loop device failed here (${String((e as Error).message).split('\n')[0]}): ext4 full-disk tests skipped`;
  }
}

/**
 * A new directory holding a fresh ext4 file system of `size` bytes (truncate's -s, e.g. '8M':
 * small, so 1 KiB blocks) made in an image file beside it and loop-mounted; unmounted after the
 * file's tests (the loop device goes with the lazy unmount).
 */
export function smallExt4(size: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `walnut-small-ext4-${process.pid}-`));
  const image = `${dir}.img`;
  try {
    execFileSync('truncate', ['-s', size, image], { stdio: 'pipe' });
    execFileSync('mkfs.ext4', ['-q', '-F', image], { stdio: 'pipe' });
    execFileSync('mount', ['-o', 'loop', image, dir], { stdio: 'pipe' });
  } catch (e) {
    fs.rmSync(image, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  mounted.push(dir);
  images.push(image);
  return dir;
}

let ext4Probe: string | null | undefined;

/** Null where loop-mounted ext4 works, else why not: probed on the first call (a 1 MiB image made and mounted), once per file. */
export function ext4Skip(): string | null {
  if (ext4Probe === undefined) ext4Probe = probeExt4();
  return ext4Probe;
}

/**
 * Fills the file system holding `dir` with a file (`dir`/filler) until a write fails with
 * ENOSPC, then gives back `leave` bytes (the filler cut by that much); returns the filler's path.
 */
export function fillUp(dir: string, leave = 0): string {
  const file = path.join(dir, 'filler');
  const fd = fs.openSync(file, 'a');
  try {
    for (const chunk of [Buffer.alloc(64 * 1024, 1), Buffer.alloc(4096, 1), Buffer.alloc(1, 1)]) {
      for (;;) {
        try {
          fs.writeSync(fd, chunk);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
          break;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  if (leave > 0) fs.truncateSync(file, Math.max(0, fs.statSync(file).size - leave));
  return file;
}

/** Unmounts and removes what was made since the last call: after each test file (test/setup-cleanup.ts; see tmp.ts removeTmpDirs). */
export function removeSmallFileSystems(): void {
  for (const dir of mounted.splice(0)) {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // left for the machine's cleanup: never touch another mount
    }
  }
  for (const image of images.splice(0)) fs.rmSync(image, { force: true });
}

/**
 * Null where `chattr +i` works on `dir`'s file system (root, ext4 and the like: files the OS then
 * refuses to write, for tests of commits the OS refuses), else why not, for a skip message.
 */
export function immutableSkip(dir: string): string | null {
  const probe = path.join(dir, 'immutable-probe');
  execFileSync('touch', [probe]);
  const r = spawnSync('chattr', ['+i', probe], { stdio: 'pipe' });
  if (r.status !== 0) return `chattr +i is not available here (${String(r.stderr ?? r.error).trim().split('\n')[0]})`;
  execFileSync('chattr', ['-i', probe]);
  fs.rmSync(probe);
  return null;
}
