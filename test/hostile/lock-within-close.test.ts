// WalnutFile.lockWithin() runs its wait (once a burst of tries, now a blocking F_OFD_SETLKW) on an
// I/O lane that is not the file's own, so a close() or closeSync() is not ordered behind it. They
// used to wait for it all the same (FileState::Release waits until no operation of the file is in
// flight), on the JS thread: a close during a 1 s burst froze the event loop for the rest of the
// second, and a close of a file whose burst was still queued behind another file's burst waited
// for both. Now a close interrupts a running wait and refuses one not started yet (queued behind
// a full pool of the lock lane: native/instance.h kLockWaiters): the wait rejects WALNUT_CLOSED,
// the close returns at once, and no lock of the closed descriptor is left in /proc/locks (a lock
// taken just before the close goes with the descriptor). Likewise a worker thread's terminate()
// during a wait of the worker's waited for the rest of it (the lane's thread is joined after its
// current operation): now the wait ends when its lane is stopped.
// How "at once" is shown, on any load: a close that waited for a wait returns no sooner than the
// wait's own deadline (its start + 1 s, the holder keeping the lock all along), so a close must
// end before that deadline. A round where the machine let the wait run nearly out before the
// close began (a loaded machine: the test's 20 ms sleep taking most of a second) cannot tell the
// two apart and is run again, a few times at most.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

import { expect, test } from 'vitest';

import { WalnutFile } from '../../lib/io/file';
import { tmpDir } from '../helpers/tmp';

const WAIT_MICROS = 1_000_000; // the longest lockWithin allows
/** The lock lane's pool: this many waits run at once, the next one queues (native/instance.h kLockWaiters). */
const LOCK_WAITERS = 64;
/** A round tells only when the close began with this much of the wait still ahead: else it runs again. */
const LEFT_MS_AT_LEAST = 300;
const ROUNDS_AT_MOST = 5;

const dir = tmpDir();
let n = 0;
const fresh = (): string => {
  const p = path.join(dir, `f${n++}.bin`);
  fs.writeFileSync(p, '');
  return p;
};
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const outcome = (p: Promise<boolean>): Promise<string> => p.then((v) => `resolved ${v}`, (e: { code?: string }) => e.code ?? String(e));
/** This process's OFD locks on `file` (/proc/locks names the inode; OFD locks show pid -1). */
const ofdLocks = (file: string): string[] => {
  const { ino } = fs.statSync(file);
  return fs.readFileSync('/proc/locks', 'utf8').split('\n').filter((l) => l.includes('OFDLCK') && l.includes(`:${ino} `));
};

/**
 * Runs `round` (it starts a wait, returns the time it started it, then calls `close`) until a
 * round's close began with LEFT_MS_AT_LEAST of the wait's second ahead; expects that close to
 * have ended before the wait's deadline (a close that waited for the wait ended after it).
 * `now` is the clock `round` used (performance.now(), or Date.now() for a worker's).
 */
async function expectCloseBeforeDeadline(what: string, round: (close: () => Promise<void>) => Promise<number>, close: () => void | Promise<void>, now = () => performance.now()): Promise<void> {
  for (let r = 1; ; r++) {
    let began = 0;
    let ended = 0;
    const waitStart = await round(async () => {
      began = now();
      await close();
      ended = now();
    });
    const deadline = waitStart + WAIT_MICROS / 1000;
    if (deadline - began < LEFT_MS_AT_LEAST && r < ROUNDS_AT_MOST) continue; // too loaded to tell: again
    expect(ended, `${what} ended ${(ended - deadline).toFixed(0)} ms after the wait's deadline (began ${(deadline - began).toFixed(0)} ms before it, round ${r})`).toBeLessThan(deadline);
    return;
  }
}

for (const [name, closeOf] of [
  ['close()', (f: WalnutFile) => f.close()],
  ['closeSync()', (f: WalnutFile) => f.closeSync()],
] as const) {
  test(`${name} during a running wait returns before the wait's deadline; the wait rejects WALNUT_CLOSED`, async () => {
    let f!: WalnutFile;
    await expectCloseBeforeDeadline(name, async (close) => {
      const p = fresh();
      const holder = WalnutFile.openSync(p);
      expect(holder.tryLock(120, 1, 'exclusive')).toBe(true);
      f = WalnutFile.openSync(p);
      const waitStart = performance.now();
      const wait = outcome(f.lockWithin(120, 1, 'exclusive', WAIT_MICROS));
      await sleep(20); // running: the lock is held, it waits on
      await close();
      expect(await wait).toBe('WALNUT_CLOSED');
      holder.closeSync();
      expect(ofdLocks(p)).toEqual([]);
      return waitStart;
    }, () => closeOf(f));
  });
}

test('closeSync() of a file whose wait is queued behind a full pool of waits: it does not wait for any; its wait never runs', async () => {
  let f!: WalnutFile;
  // (the deadline: the pool's first wait's; the closed file's wait runs only after one of them ends)
  await expectCloseBeforeDeadline('closeSync()', async (close) => {
    const p = fresh();
    const q = fresh();
    const holder = WalnutFile.openSync(p);
    expect(holder.tryLock(120, 1, 'exclusive')).toBe(true);
    const others = Array.from({ length: LOCK_WAITERS }, () => WalnutFile.openSync(p));
    const poolStart = performance.now();
    const firsts = others.map((o) => outcome(o.lockWithin(120, 1, 'exclusive', WAIT_MICROS))); // the pool's every thread, up to 1 s
    f = WalnutFile.openSync(q);
    const queued = outcome(f.lockWithin(0, 1, 'exclusive', 0)); // free: would be taken at its first try
    await sleep(20);
    await close();
    holder.unlock(120, 1); // one of the waits gets it now, the others run out their second
    const settled = await Promise.all(firsts);
    expect(settled.filter((o) => o === 'resolved true').length).toBe(1);
    expect(settled.filter((o) => o !== 'resolved true').every((o) => o === 'resolved false')).toBe(true);
    expect(await queued).toBe('WALNUT_CLOSED'); // refused without touching the closed descriptor
    expect(ofdLocks(q)).toEqual([]);
    for (const o of others) o.closeSync();
    holder.closeSync();
    expect(ofdLocks(p)).toEqual([]);
    return poolStart;
  }, () => f.closeSync());
});

test('a wait queued behind a full pool settles on its close() or cancelLockWithin() before any wait of the pool ends, and a cancelled one takes no free lock', async () => {
  // Such a wait was settled only once a thread of the pool was free to run it (up to the pool's
  // waits' second: a store's close() awaiting its lease's queued wait took 510 ms beside 69
  // other waiting stores), and a cancelled one then took its lock if free (resolved true).
  // Now both settle at once (IoThread::WithdrawQueued), and a wait asks whether it was cancelled
  // before its first try (lock_wait.cc). Shown by order, not time: each settles while every one
  // of the pool's 1 s waits is still pending.
  const p = fresh();
  const holder = WalnutFile.openSync(p);
  expect(holder.tryLock(120, 1, 'exclusive')).toBe(true);
  const others = Array.from({ length: LOCK_WAITERS }, () => WalnutFile.openSync(p));
  let poolSettled = 0;
  const firsts = others.map((o) => outcome(o.lockWithin(120, 1, 'exclusive', WAIT_MICROS)).finally(() => poolSettled++));
  await sleep(20); // the pool's every thread is waiting
  const q = fresh();
  const qHolder = WalnutFile.openSync(q);
  expect(qHolder.tryLock(0, 1, 'exclusive')).toBe(true);
  const f = WalnutFile.openSync(q);
  const log: string[] = [];
  const settledNow = (p: Promise<boolean>): Promise<string> => outcome(p).then((o) => `${o} with ${poolSettled} of the pool settled`);

  const cancelled = settledNow(f.lockWithin(0, 1, 'exclusive', WAIT_MICROS));
  await sleep(5);
  f.cancelLockWithin();
  log.push(`cancel: ${await cancelled}`);

  const cancelledFree = settledNow(f.lockWithin(0, 1, 'exclusive', WAIT_MICROS));
  f.cancelLockWithin();
  qHolder.unlock(0, 1); // free: a wait that ran now would take it
  log.push(`cancel, lock free: ${await cancelledFree}`);
  expect(qHolder.tryLock(0, 1, 'exclusive'), 'the cancelled wait took nothing').toBe(true);

  const closed = settledNow(f.lockWithin(0, 1, 'exclusive', WAIT_MICROS));
  await sleep(5);
  await f.close();
  log.push(`close: ${await closed}`);

  expect(log).toEqual([
    'cancel: resolved false with 0 of the pool settled',
    'cancel, lock free: resolved false with 0 of the pool settled',
    'close: WALNUT_CLOSED with 0 of the pool settled',
  ]);
  for (const o of others) o.closeSync();
  expect((await Promise.all(firsts)).every((o) => o === 'WALNUT_CLOSED')).toBe(true);
  qHolder.closeSync();
  holder.closeSync();
  expect(ofdLocks(p)).toEqual([]);
  expect(ofdLocks(q)).toEqual([]);
});

test('a wait that took the lock just as the file closed leaves nothing behind', async () => {
  for (let round = 0; round < 20; round++) {
    const p = fresh();
    const holder = WalnutFile.openSync(p);
    expect(holder.tryLock(120, 1, 'exclusive')).toBe(true);
    const f = WalnutFile.openSync(p);
    const wait = outcome(f.lockWithin(120, 1, 'exclusive', WAIT_MICROS));
    await sleep(5 + (round % 5));
    holder.unlock(120, 1); // the wait may take it before the close, or be stopped by it
    if (round % 2 === 0) f.closeSync();
    else await f.close();
    expect(['resolved true', 'WALNUT_CLOSED']).toContain(await wait);
    expect(ofdLocks(p), `round ${round}`).toEqual([]);
    expect(holder.tryLock(120, 1, 'exclusive')).toBe(true); // free again for anyone
    holder.closeSync();
  }
});

test('worker.terminate() during a wait of the worker\'s returns before the wait\'s deadline', async () => {
  let worker!: Worker;
  // (Date.now(): the worker's clock is another performance.now())
  await expectCloseBeforeDeadline('terminate()', async (close) => {
    const p = fresh();
    const holder = WalnutFile.openSync(p);
    expect(holder.tryLock(120, 1, 'exclusive')).toBe(true);
    const dist = path.join(__dirname, '../../dist/index.js');
    worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       const { WalnutFile } = require(${JSON.stringify(dist)});
       const f = WalnutFile.openSync(${JSON.stringify(p)});
       const waitStart = Date.now();
       f.lockWithin(120, 1, 'exclusive', ${WAIT_MICROS}).then((v) => parentPort.postMessage('settled ' + v));
       parentPort.postMessage('started ' + waitStart);`,
      { eval: true },
    );
    const messages: string[] = [];
    await new Promise<void>((resolve) =>
      worker.on('message', (m: string) => {
        messages.push(m);
        if (m.startsWith('started')) resolve();
      }),
    );
    await sleep(30); // the wait runs
    await close();
    expect(messages).toEqual([messages[0]]); // 'started …' alone: the wait never settled
    expect(holder.tryLock(120, 1, 'exclusive')).toBe(true); // still ours: the worker's descriptor took nothing
    holder.closeSync();
    expect(ofdLocks(p)).toEqual([]);
    return Number(messages[0]!.split(' ')[1]);
  }, () => worker.terminate().then(() => undefined), Date.now);
});
