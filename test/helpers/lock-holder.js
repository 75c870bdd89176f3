// Child process for lock tests: takes a lock, says "locked", holds it until stdin closes.
// usage: node lock-holder.js <file> <start> <length> <shared|exclusive> [ofd|classic]
// The OFD lock is the descriptor's: the file stays referenced until the exit (a WalnutFile
// collected by the GC closes its descriptor, and the lock went with it: after 8-16 s idle,
// a test's "held" WRITE was free again).
'use strict';
const { spawnSync } = require('node:child_process');
const [file, start, length, mode, kind = 'ofd'] = process.argv.slice(2);

if (kind === 'classic') {
  // A classic POSIX lock, like the one the sqlite3 command takes (via python3's fcntl.lockf).
  const py = `
import fcntl, os, sys
fd = os.open(${JSON.stringify(file)}, os.O_RDWR)
fcntl.lockf(fd, (fcntl.LOCK_SH if ${JSON.stringify(mode)} == 'shared' else fcntl.LOCK_EX) | fcntl.LOCK_NB, ${Number(length)}, ${Number(start)}, 0)
print('locked', flush=True)
sys.stdin.read()
`;
  spawnSync('python3', ['-c', py], { stdio: 'inherit' });
} else {
  const { WalnutFile } = require('../../dist/index.js');
  const f = WalnutFile.openSync(file, { create: true });
  f.lockSync(Number(start), Number(length), mode, 0);
  process.stdout.write('locked\n');
  process.stdin.resume();
  process.stdin.on('end', () => {
    f.closeSync();
    process.exit(0);
  });
}
