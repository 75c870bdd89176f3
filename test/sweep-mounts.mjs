// test/sweep-mounts.mjs — vitest's global setup: unmounts what killed test runs left mounted.
// test/helpers/small-fs.ts mounts a tmpfs or a loop-mounted ext4 under os.tmpdir() per file and
// unmounts it after the file's tests; a run killed mid-file (a timeout, ^C, SIGKILL) leaves the
// mount, its loop device and its image behind, and nothing removed them (30 such mounts were
// found on a dev machine). Each mount's directory is named walnut-small-fs-<pid>-,
// walnut-small-ext4-<pid>- or walnut-mount-probe-<pid>- after the process that made it: one whose process is gone is
// unmounted (lazily), then its directory and image removed. A mount of a live process (another
// run beside this one) is never touched; a pid reused since is left too.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const LEFT = /^walnut-(?:small-fs|small-ext4|mount-probe)-(\d+)-[^/]+$/;

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM'; // there, another user's
  }
}

/** Mount points (octal escapes of /proc/self/mounts decoded) directly under the temp directory. */
function mountsUnder(root) {
  let table;
  try {
    table = fs.readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return []; // not Linux
  }
  const points = table.split('\n').map((line) => (line.split(' ')[1] ?? '').replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))));
  return points.filter((p) => path.dirname(p) === root);
}

export default function sweepMounts() {
  const root = fs.realpathSync(os.tmpdir());
  for (const point of new Set(mountsUnder(root))) {
    const m = LEFT.exec(path.basename(point));
    if (m === null || alive(Number(m[1]))) continue;
    try {
      execFileSync('umount', ['-l', point], { stdio: 'pipe' });
      fs.rmSync(point, { recursive: true, force: true });
      fs.rmSync(`${point}.img`, { force: true });
    } catch {
      // not ours to unmount (not root): left as it was
    }
  }
}
