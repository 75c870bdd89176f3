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
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

import { expect, test } from 'vitest';

import { WalnutFile } from '../../lib/io/file';
import { tmpDir } from '../helpers/tmp';

const WAIT_MICROS = 1_000_000; // the longest lockWithin allows
/** The lock lane's pool: this many waits run at once, the next one queues (native/instance.h kLockWaiters). */
const LOCK_WAITERS = 64;
/** Far below the wait's second: a close that waited for the wait takes all of it. */
const CLOSE_MS_AT_MOST = 500;

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

test('close() during a running wait returns at once; the wait rejects WALNUT_CLOSED', async () => {
  const p = fresh();
  const holder = WalnutFile.openSync(p);
  expect(holder.tryLock(120, 1, 'exclusive')).toBe(true);
  const f = WalnutFile.openSync(p);
  const wait = outcome(f.lockWithin(120, 1, 'exclusive', WAIT_MICROS));
  await sleep(20); // running: the lock is held, it waits on
  const t0 = performance.now();
  await f.close();
  const closeMs = performance.now() - t0;
  expect(closeMs, `close() took ${closeMs.toFixed(0)} ms`).toBeLessThan(CLOSE_MS_AT_MOST);
  expect(await wait).toBe('WALNUT_CLOSED');
  holder.closeSync();
  expect(ofdLocks(p)).toEqual([]);
});

test('closeSync() during a running wait returns at once; the wait rejects WALNUT_CLOSED', async () => {
  const p = fresh();
  const holder = WalnutFile.openSync(p);
  expect(holder.tryLock(120, 1, 'exclusive')).toBe(true);
  const f = WalnutFile.openSync(p);
  const wait = outcome(f.lockWithin(120, 1, 'exclusive', WAIT_MICROS));
  await sleep(20);
  const t0 = performance.now();
  f.closeSync();
  const closeMs = performance.now() - t0;
  expect(closeMs, `closeSync() took ${closeMs.toFixed(0)} ms`).toBeLessThan(CLOSE_MS_AT_MOST);
  expect(await wait).toBe('WALNUT_CLOSED');
  holder.closeSync();
  expect(ofdLocks(p)).toEqual([]);
});

test('closeSync() of a file whose wait is queued behind a full pool of waits: it does not wait for any; its wait never runs', async () => {
  const p = fresh();
  const q = fresh();
  const holder = WalnutFile.openSync(p);
  expect(holder.tryLock(120, 1, 'exclusive')).toBe(true);
  const others = Array.from({ length: LOCK_WAITERS }, () => WalnutFile.openSync(p));
  const firsts = others.map((o) => outcome(o.lockWithin(120, 1, 'exclusive', WAIT_MICROS))); // the pool's every thread, up to 1 s
  const f = WalnutFile.openSync(q);
  const queued = outcome(f.lockWithin(0, 1, 'exclusive', 0)); // free: would be taken at its first try
  await sleep(20);
  const t0 = performance.now();
  f.closeSync();
  const closeMs = performance.now() - t0;
  expect(closeMs, `closeSync() took ${closeMs.toFixed(0)} ms`).toBeLessThan(CLOSE_MS_AT_MOST);
  holder.unlock(120, 1); // one of the waits gets it now, the others run out their second
  const settled = await Promise.all(firsts);
  expect(settled.filter((o) => o === 'resolved true').length).toBe(1);
  expect(settled.filter((o) => o !== 'resolved true').every((o) => o === 'resolved false')).toBe(true);
  expect(await queued).toBe('WALNUT_CLOSED'); // refused without touching the closed descriptor
  expect(ofdLocks(q)).toEqual([]);
  for (const o of others) o.closeSync();
  holder.closeSync();
  expect(ofdLocks(p)).toEqual([]);
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

test('worker.terminate() during a wait of the worker\'s returns at once', async () => {
  const p = fresh();
  const holder = WalnutFile.openSync(p);
  expect(holder.tryLock(120, 1, 'exclusive')).toBe(true);
  const dist = path.join(__dirname, '../../dist/index.js');
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     const { WalnutFile } = require(${JSON.stringify(dist)});
     const f = WalnutFile.openSync(${JSON.stringify(p)});
     f.lockWithin(120, 1, 'exclusive', ${WAIT_MICROS}).then((v) => parentPort.postMessage('settled ' + v));
     parentPort.postMessage('started');`,
    { eval: true },
  );
  const messages: string[] = [];
  await new Promise<void>((resolve) =>
    worker.on('message', (m: string) => {
      messages.push(m);
      if (m === 'started') resolve();
    }),
  );
  await sleep(30); // the wait runs
  const t0 = performance.now();
  await worker.terminate();
  const terminateMs = performance.now() - t0;
  expect(terminateMs, `terminate() took ${terminateMs.toFixed(0)} ms`).toBeLessThan(CLOSE_MS_AT_MOST);
  expect(messages).toEqual(['started']);
  expect(holder.tryLock(120, 1, 'exclusive')).toBe(true); // still ours: the worker's descriptor took nothing
  holder.closeSync();
  expect(ofdLocks(p)).toEqual([]);
});
