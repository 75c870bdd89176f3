// WalnutFile: positioned I/O, durability calls, OFD locks and every error path, on real files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { WalnutError } from '../../lib/errors';
import { WalnutFile } from '../../lib/io/file';
import { NativeFile } from '../../lib/native';
import { holdLock, release } from '../helpers/children';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;
const fresh = () => path.join(dir, `f${n++}.bin`);

describe('open', () => {
  it('creates with the requested mode and reopens read-only', async () => {
    const p = fresh();
    const f = await WalnutFile.open(p, { create: true, mode: 0o600 });
    expect(fs.statSync(p).mode & 0o777).toBe(0o600);
    expect(f.fd).toBeGreaterThan(2);
    expect(f.path).toBe(p);
    await f.close();
    expect(f.closed).toBe(true);
    const r = WalnutFile.openSync(p, { readOnly: true });
    expectWalnutError(() => r.writeSync(Buffer.alloc(1), 0, 1, 0), 'WALNUT_IO', { errno: 9, syscall: 'pwrite' });
    r.closeSync();
  });

  it('sets close-on-exec on every descriptor', () => {
    const f = WalnutFile.openSync(fresh(), { create: true });
    const flags = fs.readFileSync(`/proc/self/fdinfo/${f.fd}`, 'utf8');
    const octal = /flags:\s+(\d+)/.exec(flags)![1]!;
    expect(parseInt(octal, 8) & 0o2000000).toBe(0o2000000); // O_CLOEXEC
    f.closeSync();
  });

  it('reports a missing file as WALNUT_CANTOPEN with errno, syscall and path', async () => {
    const p = path.join(dir, 'missing', 'x');
    const err = await expectRejectsWalnut(WalnutFile.open(p), 'WALNUT_CANTOPEN', { errno: 2, syscall: 'open', path: p });
    expect(err.message).toContain(p);
    expectWalnutError(() => WalnutFile.openSync(p), 'WALNUT_CANTOPEN', { errno: 2 });
  });

  it('refuses exclusive creation of an existing file and a directory', async () => {
    const p = fresh();
    fs.writeFileSync(p, 'x');
    await expectRejectsWalnut(WalnutFile.open(p, { exclusive: true }), 'WALNUT_IO', { errno: 17 });
    expectWalnutError(() => WalnutFile.openSync(dir), 'WALNUT_CANTOPEN', { errno: 21 });
  });

  it('runs a file on the background lane when asked, and validates the lane', async () => {
    const p = fresh();
    const bg = await WalnutFile.open(p, { create: true, lane: 'background' });
    const main = WalnutFile.openSync(p);
    await Promise.all([bg.write(Buffer.from('bg'), 0, 2, 0), main.write(Buffer.from('mn'), 0, 2, 2)]);
    await bg.fdatasync();
    expect(fs.readFileSync(p, 'utf8')).toBe('bgmn');
    await bg.close();
    main.closeSync();
    expectWalnutError(() => WalnutFile.openSync(p, { lane: 'fast' as 'main' }), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => WalnutFile.openSync(p, { lane: 'Read' as 'read' }), 'WALNUT_INVALID_ARGUMENT');
  });

  it('names the four lanes\' I/O threads walnut-io, walnut-bg, walnut-rd and walnut-lk (per-thread CPU in /proc, top -H, perf)', async () => {
    const p = fresh();
    const bg = await WalnutFile.open(p, { create: true, lane: 'background' });
    const main = await WalnutFile.open(p);
    const rd = await WalnutFile.open(p, { lane: 'read', readOnly: true });
    await Promise.all([bg.fdatasync(), main.fdatasync(), rd.size(), main.lockWithin(200, 1, 'shared', 0)]); // each lane's thread has run an operation
    const names = fs.readdirSync('/proc/self/task').map((t) => fs.readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim());
    expect(names).toContain('walnut-io');
    expect(names).toContain('walnut-bg');
    expect(names).toContain('walnut-rd');
    expect(names).toContain('walnut-lk');
    await Promise.all([bg.close(), main.close(), rd.close()]);
  });

  // the read lane (a follow export's WAL reads) queues behind neither other lane: shown by order,
  // a backlog of synced writes queued on the main and background lanes first
  it('runs a file on the read lane: its read completes while the main and background lanes are still busy', async () => {
    const p = fresh();
    fs.writeFileSync(p, 'walnut');
    const busy = [await WalnutFile.open(fresh(), { create: true }), await WalnutFile.open(fresh(), { create: true, lane: 'background' })];
    const rd = await WalnutFile.open(p, { lane: 'read', readOnly: true });
    const chunk = Buffer.alloc(4096, 1);
    const WRITES = 200;
    // Up to 3 tries: on a loaded machine this thread can be kept off the CPU for a whole backlog
    // (seconds) and see the read after it although the read never waited for it (seen in a full
    // run at load 7-15). Counted per write, and a read must come with a tenth of each lane's
    // writes still to come: a read queued behind either lane's backlog (FIFO) fails every try (its
    // completion and the last writes' can reach JavaScript in either order, so not "before all").
    // Small synced writes, queued in turns on both lanes: each costs its lane a device flush
    // (~0.2 ms here) and JavaScript microseconds to queue. With 1 MiB writes, queueing them
    // (copies) took longer than the lanes took to run them (CI: the main lane's 100 all done
    // before the read was even queued), so the backlog was gone before the read came.
    const doneBeforeRead: number[][] = []; // per try: [main, background] writes completed when the read did
    const ahead = (t: number[]) => t.every((n) => n <= WRITES * 0.9);
    for (let attempt = 0; attempt < 3 && !doneBeforeRead.some(ahead); attempt++) {
      const done = busy.map(() => 0);
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < WRITES; i++) busy.forEach((f, lane) => writes.push(f.writev([chunk], (i % 64) * 4096, 'data').then(() => done[lane]!++)));
      const backlogs = Promise.all(writes);
      const out = Buffer.alloc(6);
      expect(await rd.read(out, 0, 6, 0)).toBe(6);
      doneBeforeRead.push([...done]);
      await backlogs;
      expect(out.toString()).toBe('walnut');
    }
    expect(doneBeforeRead.some(ahead), `of ${WRITES} synced 4 KiB writes on the main and the background lane, done before the read, each try: ${JSON.stringify(doneBeforeRead)}`).toBe(true);
    await Promise.all([...busy, rd].map((f) => f.close()));
  });

  it('validates options', () => {
    expectWalnutError(() => WalnutFile.openSync(''), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => WalnutFile.openSync('a\0b'), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => WalnutFile.openSync(fresh(), { create: true, mode: -1 }), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => WalnutFile.openSync(fresh(), { readOnly: true, create: true }), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => new (NativeFile as unknown as new (p: unknown) => unknown)(42), 'WALNUT_INVALID_ARGUMENT');
    for (const sameFileAs of [-1, 1.5, NaN, '3'] as unknown as number[]) expectWalnutError(() => WalnutFile.openSync(fresh(), { sameFileAs }), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => WalnutFile.openSync(fresh(), { sameFileAs: 0, create: true }), 'WALNUT_INVALID_ARGUMENT');
  });

  it('sameFileAs opens the file a descriptor has open, with locks of its own, after its name was removed and taken by another file', async () => {
    const p = fresh();
    const first = await WalnutFile.open(p, { create: true });
    await first.write(Buffer.from('first'), 0, 5, 0);
    fs.rmSync(p);
    fs.writeFileSync(p, 'stranger');
    const again = await WalnutFile.open(p, { sameFileAs: first.fd });
    expect(again.path).toBe(p); // the name errors report, not /proc/self/fd/N
    const got = Buffer.alloc(16);
    expect(await again.read(got, 0, 16, 0)).toBe(5);
    expect(got.subarray(0, 5).toString()).toBe('first');
    expect(fs.fstatSync(again.fd).ino).toBe(fs.fstatSync(first.fd).ino);
    expect(first.tryLock(0, 1, 'exclusive')).toBe(true);
    expect(again.tryLock(0, 1, 'shared')).toBe(false); // another open file description: another lock owner
    await Promise.all([first.close(), again.close()]);
    expect(fs.readFileSync(p, 'utf8')).toBe('stranger');
  });
});

describe('positioned I/O', () => {
  it('writes and reads at offsets, sync and async, and reads short only at end of file', async () => {
    const f = await WalnutFile.open(fresh(), { create: true });
    const data = Buffer.from('hello, walnut');
    expect(await f.write(data, 0, data.length, 100)).toBe(data.length);
    expect(f.writeSync(data, 7, 6, 0)).toBe(6);
    expect(await f.size()).toBe(100 + data.length);
    const back = Buffer.alloc(data.length);
    expect(await f.read(back, 0, back.length, 100)).toBe(data.length);
    expect(back.equals(data)).toBe(true);
    const head = Buffer.alloc(6);
    expect(f.readSync(head, 0, 6, 0)).toBe(6);
    expect(head.toString()).toBe('walnut');
    const tail = Buffer.alloc(20);
    expect(await f.read(tail, 0, 20, 105)).toBe(8); // only 8 bytes exist past 105
    expect(await f.read(tail, 0, 20, 10_000)).toBe(0); // past the end
    expect(f.readSync(tail, 5, 0, 0)).toBe(0);
    await f.close();
  });

  it('writes a list of buffers back to back with writev, including more than IOV_MAX', async () => {
    const f = await WalnutFile.open(fresh(), { create: true });
    const parts: Uint8Array[] = Array.from({ length: 1500 }, (_, i) => Buffer.alloc(3, i % 251));
    parts.push(new Uint8Array(0));
    const total = parts.reduce((s, b) => s + b.length, 0);
    expect(await f.writev(parts, 10)).toBe(total);
    expect(f.writevSync([Buffer.from('ab'), Buffer.from('cd')], 0)).toBe(4);
    const all = fs.readFileSync(f.path);
    expect(all.subarray(0, 4).toString()).toBe('abcd');
    expect(all.subarray(10).equals(Buffer.concat(parts))).toBe(true);
    await f.close();
  });

  it('writev with durability syncs in the same operation and validates the mode', async () => {
    const f = await WalnutFile.open(fresh(), { create: true });
    expect(await f.writev([Buffer.from('abc')], 0, 'data')).toBe(3);
    expect(await f.writev([Buffer.from('def')], 3, 'full')).toBe(3);
    expect(f.writevSync([Buffer.from('g')], 6, 'data')).toBe(1);
    expect(fs.readFileSync(f.path, 'utf8')).toBe('abcdefg');
    await expectRejectsWalnut(f.writev([Buffer.from('x')], 0, 'fast' as 'data'), 'WALNUT_INVALID_ARGUMENT');
    await f.close();
  });

  it('keeps Uint8Array views exact (byteOffset respected)', async () => {
    const f = await WalnutFile.open(fresh(), { create: true });
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    const view = backing.subarray(2, 5);
    await f.write(view, 0, 3, 0);
    expect([...fs.readFileSync(f.path)]).toEqual([1, 2, 3]);
    await f.close();
  });

  it('syncs, truncates, allocates and syncs directories', async () => {
    const f = await WalnutFile.open(fresh(), { create: true });
    await f.write(Buffer.alloc(8192, 1), 0, 8192, 0);
    await f.fdatasync();
    f.fsyncSync();
    await f.fsync();
    f.fdatasyncSync();
    await f.truncate(4096);
    expect(f.sizeSync()).toBe(4096);
    f.truncateSync(0);
    await f.allocate(0, 1 << 20);
    expect(await f.size()).toBe(1 << 20);
    f.allocateSync(0, 0);
    await WalnutFile.syncDirectory(dir);
    WalnutFile.syncDirectorySync(dir);
    await expectRejectsWalnut(WalnutFile.syncDirectory(path.join(dir, 'nope')), 'WALNUT_CANTOPEN', { errno: 2 });
    await f.close();
  });

  it('runs async operations of one file in submission order', async () => {
    const f = await WalnutFile.open(fresh(), { create: true });
    const ops: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) ops.push(f.write(Buffer.from([i & 0xff]), 0, 1, 0));
    ops.push(f.fdatasync());
    const size = f.size();
    const closed = f.close(); // queued behind everything above
    await Promise.all(ops);
    expect(await size).toBe(1);
    await closed;
    expect(fs.readFileSync(f.path)[0]).toBe(199);
  });

  it('keeps buffers alive while an operation is queued', async () => {
    const f = await WalnutFile.open(fresh(), { create: true });
    const pending: Promise<number>[] = [];
    for (let i = 0; i < 50; i++) pending.push(f.write(Buffer.alloc(64 * 1024, i), 0, 64 * 1024, i * 64 * 1024));
    (globalThis as { gc?: () => void }).gc?.();
    await Promise.all(pending);
    const all = fs.readFileSync(f.path);
    for (let i = 0; i < 50; i++) expect(all[i * 64 * 1024 + 1000]).toBe(i);
    await f.close();
  });
});

describe('argument validation', () => {
  const f = WalnutFile.openSync(fresh(), { create: true });
  const buf = Buffer.alloc(16);
  const bad: [string, () => unknown][] = [
    ['not a buffer', () => f.readSync('abc' as unknown as Buffer, 0, 1, 0)],
    ['Uint16Array', () => f.readSync(new Uint16Array(4) as unknown as Uint8Array, 0, 1, 0)],
    ['negative offset', () => f.readSync(buf, -1, 1, 0)],
    ['offset past end', () => f.readSync(buf, 17, 0, 0)],
    ['length past end', () => f.readSync(buf, 8, 9, 0)],
    ['fractional length', () => f.readSync(buf, 0, 1.5, 0)],
    ['NaN position', () => f.readSync(buf, 0, 1, NaN)],
    ['negative position', () => f.writeSync(buf, 0, 1, -4096)],
    ['huge position', () => f.writeSync(buf, 0, 1, 2 ** 60)],
    ['missing position', () => (f.writeSync as unknown as (b: Buffer) => number)(buf)],
    ['writev non-array', () => f.writevSync(buf as unknown as Buffer[], 0)],
    ['writev bad element', () => f.writevSync([buf, 'x' as unknown as Buffer], 0)],
    ['truncate negative', () => f.truncateSync(-1)],
    ['lock bad mode', () => f.tryLock(0, 1, 'both' as 'shared')],
    ['lock zero length', () => f.tryLock(0, 0, 'shared')],
    ['lock negative start', () => f.tryLock(-5, 1, 'shared')],
    ['lock timeout NaN', () => f.lockSync(0, 1, 'shared', NaN)],
  ];
  for (const [name, call] of bad) {
    it(`rejects ${name} with WALNUT_INVALID_ARGUMENT`, () => {
      expectWalnutError(call, 'WALNUT_INVALID_ARGUMENT');
    });
  }
  it('rejects (does not throw) from async methods', async () => {
    await expectRejectsWalnut(f.read(buf, 0, 99, 0), 'WALNUT_INVALID_ARGUMENT');
    await expectRejectsWalnut(f.lock(0, 1, 'shared', -1), 'WALNUT_INVALID_ARGUMENT');
    for (const [start, length, mode, micros] of [
      [0, 1, 'shared', -1],
      [0, 1, 'shared', 1_000_001],
      [0, 1, 'shared', 1.5],
      [0, 1, 'shared', NaN],
      [0, 1, 'shared', '5'],
      [0, 1, 'both', 10],
      [0, 0, 'exclusive', 10],
      [-1, 1, 'exclusive', 10],
      [2 ** 53, 1, 'exclusive', 10], // past the safe integers, and ranges past 2^63
      [2 ** 63, 1, 'exclusive', 10],
      [0, 2 ** 64, 'exclusive', 10],
      [Infinity, 1, 'exclusive', 10],
      [0, 1, 'exclusive', Infinity],
      [0, 1, 'exclusive', 10n],
      [0, 1, 'unlock', 10],
      [0, 1, new String('shared'), 10],
      [0, 1, 'exclusive'],
    ] as [number, number, 'shared', number][]) {
      await expectRejectsWalnut(f.lockWithin(start, length, mode, micros), 'WALNUT_INVALID_ARGUMENT');
    }
  });
});

describe('closed handles', () => {
  it('every call on a closed file fails with WALNUT_CLOSED and names the file', async () => {
    const f = await WalnutFile.open(fresh(), { create: true });
    await f.close();
    const buf = Buffer.alloc(4);
    expectWalnutError(() => f.writeSync(buf, 0, 4, 0), 'WALNUT_CLOSED', { path: f.path });
    await expectRejectsWalnut(f.write(buf, 0, 4, 0), 'WALNUT_CLOSED');
    await expectRejectsWalnut(f.read(buf, 0, 4, 0), 'WALNUT_CLOSED');
    await expectRejectsWalnut(f.fdatasync(), 'WALNUT_CLOSED');
    await expectRejectsWalnut(f.close(), 'WALNUT_CLOSED');
    expectWalnutError(() => f.closeSync(), 'WALNUT_CLOSED');
    expectWalnutError(() => f.tryLock(0, 1, 'shared'), 'WALNUT_CLOSED');
    await expectRejectsWalnut(f.lockWithin(0, 1, 'shared', 10), 'WALNUT_CLOSED');
    expectWalnutError(() => f.sizeSync(), 'WALNUT_CLOSED');
    expect(f.fd).toBe(-1);
  });

  it('closeSync waits for queued async writes before closing the descriptor', async () => {
    const f = await WalnutFile.open(fresh(), { create: true });
    const writes = Array.from({ length: 100 }, (_, i) => f.write(Buffer.alloc(4096, i), 0, 4096, i * 4096));
    f.closeSync();
    await Promise.all(writes);
    expect(fs.statSync(f.path).size).toBe(100 * 4096);
  });
});

describe('locks', () => {
  it('conflict between two handles of the same file in one process (OFD semantics)', async () => {
    const p = fresh();
    const a = WalnutFile.openSync(p, { create: true });
    const b = WalnutFile.openSync(p);
    expect(a.tryLock(120, 1, 'exclusive')).toBe(true);
    expect(b.tryLock(120, 1, 'shared')).toBe(false);
    expect(b.lockHolder(120, 1, 'shared')).toMatchObject({ type: 'exclusive', start: 120, length: 1 });
    expect(b.tryLock(121, 1, 'exclusive')).toBe(true); // other bytes are independent
    a.unlock(120, 1);
    expect(b.tryLock(120, 1, 'shared')).toBe(true);
    expect(a.tryLock(120, 1, 'shared')).toBe(true); // shared + shared
    expect(a.lockHolder(120, 1, 'shared')).toBeNull();
    a.closeSync();
    b.closeSync();
  });

  it('lockWithin waits for the given microseconds off the JS thread: false while held, true once let go mid-wait', async () => {
    const p = fresh();
    const a = WalnutFile.openSync(p, { create: true });
    const b = WalnutFile.openSync(p);
    expect(a.tryLock(120, 1, 'exclusive')).toBe(true);
    const t0 = performance.now();
    expect(await b.lockWithin(120, 1, 'shared', 20_000)).toBe(false);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(19);
    expect(await b.lockWithin(121, 1, 'exclusive', 0)).toBe(true); // free: taken at the first try
    // the JS thread is free while the burst runs: it lets the lock go 30 ms in
    const burst = b.lockWithin(120, 1, 'exclusive', 1_000_000);
    await new Promise((resolve) => setTimeout(resolve, 30));
    a.unlock(120, 1);
    const t1 = performance.now();
    expect(await burst).toBe(true);
    expect(performance.now() - t1).toBeLessThan(900); // it did not run to its end
    expect(a.tryLock(120, 1, 'shared')).toBe(false); // b holds it now
    a.closeSync();
    b.closeSync();
  });

  it('cancelLockWithin: a wait in progress and one asked for before it resolve false at once; a later one waits again', async () => {
    const p = fresh();
    const a = WalnutFile.openSync(p, { create: true });
    const b = WalnutFile.openSync(p);
    expect(a.tryLock(120, 1, 'exclusive')).toBe(true);
    const running = b.lockWithin(120, 1, 'exclusive', 1_000_000);
    await new Promise((resolve) => setTimeout(resolve, 30)); // blocked in the kernel by now
    const t0 = performance.now();
    b.cancelLockWithin();
    expect(await running).toBe(false);
    expect(performance.now() - t0).toBeLessThan(500); // not its second
    const later = b.lockWithin(120, 1, 'exclusive', 1_000_000); // asked for after the cancel: it waits
    await new Promise((resolve) => setTimeout(resolve, 30));
    a.unlock(120, 1);
    expect(await later).toBe(true);
    a.closeSync();
    b.closeSync();
    expect(() => b.cancelLockWithin()).toThrow(expect.objectContaining({ code: 'WALNUT_CLOSED' }));
  });

  it('lockWithin: a burst that takes a lock another process let go; close() after it leaves nothing behind', async () => {
    const p = fresh();
    fs.writeFileSync(p, '');
    const child = await holdLock(p, 120, 1, 'exclusive');
    try {
      const b = await WalnutFile.open(p);
      const burst = b.lockWithin(120, 1, 'exclusive', 1_000_000);
      await release(child); // the other process exits: its lock goes
      const closed = b.close(); // waits for the burst (FileState::Release)
      expect(await burst).toBe(true);
      await closed;
      const c = WalnutFile.openSync(p);
      expect(c.tryLock(120, 1, 'exclusive')).toBe(true); // b's lock went with its descriptor
      c.closeSync();
    } finally {
      child.kill();
    }
  });

  it('closing another descriptor of the file does not drop our locks (the POSIX trap)', () => {
    const p = fresh();
    const holder = WalnutFile.openSync(p, { create: true });
    expect(holder.tryLock(0, 100, 'exclusive')).toBe(true);
    const other = WalnutFile.openSync(p);
    other.closeSync();
    fs.closeSync(fs.openSync(p, 'r')); // plain fs open/close, like a library copying the file
    const probe = WalnutFile.openSync(p);
    expect(probe.tryLock(50, 1, 'shared')).toBe(false);
    probe.closeSync();
    holder.closeSync();
  });

  it('sees a lock held by another walnut process, waits the busy timeout, then WALNUT_BUSY', async () => {
    const p = fresh();
    fs.writeFileSync(p, '');
    const child = await holdLock(p, 1073741824, 1, 'exclusive');
    try {
      const f = await WalnutFile.open(p);
      expect(f.tryLock(1073741824, 1, 'shared')).toBe(false);
      const t0 = performance.now();
      const err = await expectRejectsWalnut(f.lock(1073741824, 1, 'shared', 150), 'WALNUT_BUSY', { path: p });
      expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
      expect(err.message).toContain('exclusive');
      expectWalnutError(() => f.lockSync(1073741824, 1, 'exclusive', 30), 'WALNUT_BUSY');
      // the wait succeeds once the holder goes away
      const waiting = f.lock(1073741824, 1, 'exclusive', 10_000);
      await release(child);
      await waiting;
      await f.close();
    } finally {
      child.kill();
    }
  });

  it('conflicts with classic POSIX locks (what sqlite3 takes) and names their pid', async () => {
    const p = fresh();
    fs.writeFileSync(p, 'x');
    const child = await holdLock(p, 124, 1, 'shared', 'classic');
    try {
      const f = await WalnutFile.open(p);
      expect(f.tryLock(124, 1, 'shared')).toBe(true);
      f.unlock(124, 1);
      expect(f.tryLock(124, 1, 'exclusive')).toBe(false);
      const holder = f.lockHolder(124, 1, 'exclusive');
      expect(holder?.type).toBe('shared');
      expect(holder?.pid).toBeGreaterThan(0);
      await f.close();
    } finally {
      await release(child);
    }
  });
});

describe('errors cross the addon as WalnutError', () => {
  it('instanceof and stack', () => {
    try {
      WalnutFile.openSync(path.join(dir, 'nope', 'nope'));
    } catch (e) {
      expect(e).toBeInstanceOf(WalnutError);
      expect(e).toBeInstanceOf(Error);
      expect((e as Error).stack).toContain('WALNUT_CANTOPEN');
      return;
    }
    throw new Error('unreachable');
  });
});
