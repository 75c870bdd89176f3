// A write lease's blocking wait for WRITE ends at its deadline and on a close by a SIGRTMIN+5
// that its POSIX timer sends to the waiting thread, through walnut's handler (installed without
// SA_RESTART: the fcntl returns EINTR). walnut installs that handler only where the signal is
// free, but nothing stopped a native addon (here an LD_PRELOADed shim, test/helpers/claim-rt-
// signal-shim.c) from installing its own over it later: with SA_RESTART there, every later wait
// blocked in the kernel for good. A lease with busyTimeout 1500 never settled (still pending 15 s
// on), and the close of a store whose lease waited hung the event loop itself (FileState::Release
// waits on the JS thread for the file's waits to end) until another process let WRITE go. Now
// a wait looks before each block whether the handler is still walnut's, and waits that find it
// is not poll (native/lock_wait.cc HandlerStillOurs). Shown here in a child process, beside a
// python3 sqlite3 holding WRITE: after the claim, a lease still fails WALNUT_BUSY at its busy
// timeout, a close mid-wait still ends the wait (WALNUT_CLOSED), and a lease is had once the
// holder commits. The same where the signal is set back to SIG_DFL instead (a library resetting
// dispositions): the next blocking wait's timer signal ended the process ("Real-time signal 5").
// Not covered (lock_wait.h): a wait blocked in the kernel at the very moment of the claim waits
// until the lock is had (SIG_DFL: the process ends); this test claims between waits.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';

import { expect, test } from 'vitest';

import { buildClaimRtSignalShim } from '../helpers/claim-rt-signal-shim';
import { tmpDir } from '../helpers/tmp';
import { startWriteGap } from '../helpers/write-gap';

/**
 * Short: the leases here are meant to fail busy, and that must still happen after the claim. A
 * wait blocks in the kernel after its first few tries (microseconds), so one of 300 ms is in
 * the kernel for most of it, as one of 1,500 ms was (the bug: it never ended at all).
 */
const SHORT_BUSY_MS = 300;
/** How long the test waits for each line of the child: fifty busy timeouts (a wait stuck in the kernel never answers). */
const LINE_MS = 15_000;

test.for([
  ['a handler with SA_RESTART', 'handler'],
  ['SIG_DFL', 'default'],
] as const)('SIGRTMIN+5 set to %s over walnut\'s handler: later lease waits still end at the busy timeout and on close(), and still get WRITE', { timeout: 120_000 }, async ([, as], { skip }) => {
  const dir = tmpDir();
  const shim = buildClaimRtSignalShim(dir);
  if (shim === null) return skip(); // no C compiler: nothing can claim the signal
  const file = path.join(dir, 'late.db');
  execFileSync('sqlite3', [file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w, v)'], { stdio: 'pipe' });
  const trigger = path.join(dir, 'claim-now');
  const { ask, end } = startWriteGap(file);
  const dist = path.join(__dirname, '../../dist/index.js');
  // each step waits for a line on stdin, so that the claim falls between two waits
  const script = `const { open } = require(${JSON.stringify(dist)});
    const readline = require('node:readline');
    const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
    const say = (s) => process.stdout.write(s + '\\n');
    const code = (p) => p.then(() => 'held', (e) => String(e.code));
    (async () => {
      const first = await open(${JSON.stringify(file)}, { busyTimeout: ${SHORT_BUSY_MS}, shareLane: false });
      say('before the claim: ' + await code(first.holdWriteLease())); // blocked in the kernel: walnut's handler installed
      await first.close();
      await lines.next(); // the claim is made
      const busy = await open(${JSON.stringify(file)}, { busyTimeout: ${SHORT_BUSY_MS}, shareLane: false });
      say('after the claim: ' + await code(busy.holdWriteLease()));
      await busy.close();
      const closing = await open(${JSON.stringify(file)}, { busyTimeout: 60000, shareLane: false });
      const cut = code(closing.holdWriteLease());
      await new Promise((resolve) => setTimeout(resolve, 300)); // past the first quick tries: waiting
      await closing.close();
      say('closed mid-wait: ' + await cut);
      const had = await open(${JSON.stringify(file)}, { busyTimeout: 60000, shareLane: false });
      const lease = code(had.holdWriteLease());
      say('waiting');
      say('once let go: ' + await lease);
      had.releaseWriteLease();
      await had.close();
      say('done');
      process.exit(0); // (stdin stays open)
    })().catch((e) => say('failed ' + (e.code ?? e)));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LD_PRELOAD: shim, CLAIM_RT_SIGNAL_WHEN: trigger, CLAIM_RT_SIGNAL_AS: as } });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += String(d)));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const line = async (): Promise<string> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`no line in ${LINE_MS} ms`), LINE_MS)));
    try {
      return await Promise.race([lines.next().then((r) => String(r.value)), late]);
    } finally {
      clearTimeout(timer);
    }
  };
  try {
    expect(await ask('hold')).toBe('ok');
    expect(await line()).toBe('before the claim: WALNUT_BUSY');
    fs.writeFileSync(trigger, '');
    for (let t = 0; t < 500 && !stderr.includes('claimed'); t++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(stderr, 'the shim installed its handler').toContain('claim-rt-signal-shim: claimed');
    child.stdin!.write('go\n');
    expect(await line()).toBe('after the claim: WALNUT_BUSY');
    expect(await line()).toBe('closed mid-wait: WALNUT_CLOSED');
    expect(await line()).toBe('waiting');
    expect(await ask('commit')).toBe('ok');
    expect(await line()).toBe('once let go: held');
    expect(await line()).toBe('done');
    expect(await exited, "the child exits by itself").toBe(0);
  } finally {
    child.kill('SIGKILL');
    end();
  }
});
