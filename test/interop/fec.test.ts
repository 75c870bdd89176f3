// The -wal-fec sidecar end to end: walnut commits SQLite page images with fec on, frames of the
// WAL are damaged on disk (bit flips, zeroed frames, torn sectors), and recovery repairs up to R
// damaged frames per group: the WAL comes back byte for byte and SQLite's integrity_check is ok.
// Past R, or without a usable sidecar, recovery keeps exactly the frames SQLite's recovery keeps.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { inspect, open, verify } from '../../lib/index';
import { runNode } from '../helpers/children';
import { Database } from '../helpers/sqlite';
import { buildDatabase, sqliteIntegrity } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir('fec');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const PS = 1024;
const FRAME = 24 + PS;
const frameAt = (f: number) => 32 + (f - 1) * FRAME;

let base: { bytes: Buffer; pages: number } | null = null;
function baseImage() {
  if (base === null) {
    const src = buildDatabase(dir, 'fec-base', { pageSize: PS, rows: 1500 });
    const bytes = fs.readFileSync(src);
    base = { bytes, pages: bytes.length / PS };
  }
  return base;
}

interface FecWal {
  file: string;
  wal: Buffer;
  /** [first, last] frame of each group (one commit each) */
  groups: [number, number][];
}

let seq = 0;
/** A database whose WAL holds one commit (one FEC group) per entry of `sizes`, SQLite's pages rewritten unchanged. */
async function fecWal(sizes: number[], fec: { repairSymbols: number; codec?: 'rs' | 'raptorq' }): Promise<FecWal> {
  const { bytes, pages } = baseImage();
  expect(pages).toBeGreaterThanOrEqual(Math.max(...sizes));
  const file = path.join(dir, `w${seq++}.db`);
  fs.writeFileSync(file, bytes);
  const store = await open(file, { fec, autoCheckpoint: false, keepWal: true });
  const groups: [number, number][] = [];
  let start = 0;
  for (const size of sizes) {
    const batch = [];
    for (let i = 0; i < size; i++) {
      const pgno = 1 + ((start + i) % pages);
      batch.push({ pgno, data: bytes.subarray((pgno - 1) * PS, pgno * PS) });
    }
    start += size;
    const r = await store.commit(batch, { dbSize: pages });
    groups.push([r.firstFrame, r.lastFrame]);
  }
  await store.close(); // waits for the sidecar writer
  const m = store.metrics().fec as { groups: number; writeErrors: number };
  expect(m.writeErrors).toBe(0);
  expect(m.groups).toBe(sizes.length);
  expect(store.metrics({ format: 'prometheus' })).toContain(`walnut_fec_groups_total ${sizes.length}\n`);
  fs.rmSync(`${file}-shm`, { force: true }); // the next open recovers from the WAL
  return { file, wal: fs.readFileSync(`${file}-wal`), groups };
}

type Damage = 'flip' | 'zero' | 'torn';
/** Damages frame f; false when the bytes did not change (zeros written over zeros). */
function damageFrame(file: string, f: number, kind: Damage, salt: number): boolean {
  const fd = fs.openSync(`${file}-wal`, 'r+');
  const before = Buffer.alloc(FRAME);
  const after = Buffer.alloc(FRAME);
  try {
    const at = frameAt(f);
    fs.readSync(fd, before, 0, FRAME, at);
    if (kind === 'zero') fs.writeSync(fd, Buffer.alloc(FRAME), 0, FRAME, at);
    else if (kind === 'torn') fs.writeSync(fd, Buffer.alloc(512, 0xee), 0, 512, at + ((salt * 512) % (FRAME - 512))); // a sector of other bytes
    else {
      const b = Buffer.alloc(1);
      const off = at + ((salt * 7919) % FRAME);
      fs.readSync(fd, b, 0, 1, off);
      b[0]! ^= 1 << salt % 8;
      fs.writeSync(fd, b, 0, 1, off);
    }
    fs.readSync(fd, after, 0, FRAME, at);
  } finally {
    fs.closeSync(fd);
  }
  return !before.equals(after);
}

/** SQLite's own recovery of a copy of the database and WAL: how many frames it keeps. */
function sqliteFrames(file: string): number {
  const copy = `${file}.sqlite-copy`;
  fs.copyFileSync(file, copy);
  fs.copyFileSync(`${file}-wal`, `${copy}-wal`);
  fs.rmSync(`${copy}-shm`, { force: true });
  const db = new Database(copy);
  try {
    db.pragma('wal_autocheckpoint = 0');
    db.prepare('SELECT count(*) FROM sqlite_schema').get();
    return fs.readFileSync(`${copy}-shm`).readUInt32LE(16); // mxFrame in the -shm header SQLite wrote
  } finally {
    db.close();
    for (const s of ['', '-wal', '-shm']) fs.rmSync(copy + s, { force: true });
  }
}

/** Opens with fec (recovery runs), returns what it saw, closes keeping the WAL. */
async function reopen(file: string, fec: { repairSymbols: number; codec?: 'rs' | 'raptorq' }) {
  const store = await open(file, { fec, autoCheckpoint: false, keepWal: true });
  const snap = await store.snapshot();
  const walFrames = snap.mxFrame;
  snap.release();
  const m = store.metrics().fec as { recovery: { repairedFrames: number; repairedGroups: number; fallbacks: Record<string, number> } };
  const prometheus = store.metrics({ format: 'prometheus' });
  const events = store.recentEvents().filter((e) => e.name === 'fec');
  await store.close();
  return { walFrames, recovery: m.recovery, prometheus, events };
}

function pick(r: () => number, from: number, to: number, n: number): number[] {
  const all = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all.slice(0, n).sort((a, b) => a - b);
}

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

const codecs = ['rs', 'raptorq'] as const;

describe('FEC repair in recovery', () => {
  for (const codec of codecs) {
    for (const R of [1, 2, 4]) {
      it(`${codec}, R = ${R}: R damaged frames in each of groups of 1 to 250 frames are repaired byte for byte`, async () => {
        const sizes = codec === 'rs' ? [1, 3, 17, 64, 250] : [1, 5, 64, 250];
        const w = await fecWal(sizes, { repairSymbols: R, codec });
        const r = rng(R * 31 + sizes.length);
        const kinds: Damage[] = ['flip', 'zero', 'torn'];
        let damaged = 0;
        for (const [first, last] of w.groups) {
          let n = 0;
          for (const f of pick(r, first, last, Math.min(R, last - first + 1))) if (damageFrame(w.file, f, kinds[n++ % 3]!, n + damaged)) damaged++;
        }
        const total = w.groups[w.groups.length - 1]![1];
        expect(sqliteFrames(w.file)).toBeLessThan(total); // SQLite alone would lose data here
        const seen = await reopen(w.file, { repairSymbols: R, codec });
        expect(seen.walFrames).toBe(total);
        expect(seen.recovery.repairedFrames).toBe(damaged);
        expect(seen.recovery.repairedGroups).toBe(w.groups.length);
        expect(seen.recovery.fallbacks).toEqual({});
        expect(seen.prometheus).toContain(`walnut_fec_repaired_frames_total ${damaged}\n`);
        expect(seen.events.map((e) => e.data['stage'])).toEqual(w.groups.map(() => 'repair'));
        expect(fs.readFileSync(`${w.file}-wal`).equals(w.wal)).toBe(true);
        expect(sqliteFrames(w.file)).toBe(total);
        expect(sqliteIntegrity(w.file)).toEqual(['ok']);
      });
    }
  }

  it.each(codecs)('%s: a batch larger than the group limit becomes several groups, each repairing its own R', async (codec) => {
    const { bytes, pages } = baseImage();
    expect(pages).toBeGreaterThanOrEqual(400);
    const file = path.join(dir, `big-batch-${codec}.db`);
    fs.writeFileSync(file, bytes);
    const store = await open(file, { fec: { repairSymbols: 2, codec }, autoCheckpoint: false, keepWal: true });
    const batch = Array.from({ length: 400 }, (_, i) => ({ pgno: i + 1, data: bytes.subarray(i * PS, (i + 1) * PS) }));
    await store.commit(batch, { dbSize: pages });
    await store.close();
    expect((store.metrics().fec as { groups: number }).groups).toBe(2); // rs: 253 + 147 frames; raptorq: 255 + 145
    fs.rmSync(`${file}-shm`);
    const wal = fs.readFileSync(`${file}-wal`);
    for (const [f, kind] of [[3, 'zero'], [200, 'flip'], [256, 'torn'], [399, 'zero']] as const) damageFrame(file, f, kind, f);
    expect(sqliteFrames(file)).toBe(0);
    const seen = await reopen(file, { repairSymbols: 2, codec });
    expect(seen.walFrames).toBe(400);
    expect(seen.recovery).toMatchObject({ repairedFrames: 4, repairedGroups: 2 });
    expect(fs.readFileSync(`${file}-wal`).equals(wal)).toBe(true);
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('a WAL of 4 -shm segments: a damaged frame in segment 3 is repaired, and the rebuilt index reaches it', async () => {
    const w = await fecWal(Array.from({ length: 50 }, () => 250), { repairSymbols: 1 }); // 12,500 frames; segment 3 starts at 12,255
    const f = 12_400;
    expect(damageFrame(w.file, f, 'zero', 1)).toBe(true);
    expect(sqliteFrames(w.file)).toBeLessThan(f);
    const seen = await reopen(w.file, { repairSymbols: 1 });
    expect(seen.walFrames).toBe(12_500);
    expect(seen.recovery).toMatchObject({ repairedFrames: 1, repairedGroups: 1 });
    expect(fs.readFileSync(`${w.file}-wal`).equals(w.wal)).toBe(true);
    expect(fs.statSync(`${w.file}-shm`).size).toBe(4 * 32768);
    expect(sqliteIntegrity(w.file)).toEqual(['ok']);
  });

  it("codec 'raptorq' refuses 64 KiB pages (16-bit symbol sizes) at open, cleanly", async () => {
    const file = path.join(dir, 'p64k.db');
    await (await open(file, { pageSize: 65536 })).close();
    await expect(open(file, { fec: { codec: 'raptorq' } })).rejects.toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'fec.codec' });
    const store = await open(file, { fec: { codec: 'rs' } }); // the refused open left no lock behind
    await store.commit([{ pgno: 2, data: Buffer.alloc(65536, 1) }]);
    await store.close();
  });

  it('R + 1 damaged frames in a group: recovery stops where SQLite does, says why, writes nothing', async () => {
    const w = await fecWal([10, 20, 30], { repairSymbols: 2 });
    const [first] = w.groups[1]!;
    for (const f of [first + 1, first + 5, first + 9]) damageFrame(w.file, f, 'flip', f);
    const before = fs.readFileSync(`${w.file}-wal`);
    const expected = sqliteFrames(w.file);
    expect(expected).toBe(first - 1);
    const seen = await reopen(w.file, { repairSymbols: 2 });
    expect(seen.walFrames).toBe(expected);
    expect(seen.recovery.fallbacks).toEqual({ 'too-many-damaged': 1 });
    expect(seen.events).toEqual([expect.objectContaining({ name: 'fec', data: expect.objectContaining({ stage: 'fallback', reason: 'too-many-damaged', frame: first + 1 }) })]);
    expect(fs.readFileSync(`${w.file}-wal`).subarray(0, before.length).equals(before)).toBe(true);
  });

  it.each([
    ['missing', (f: string) => fs.rmSync(`${f}-wal-fec`), 'no-sidecar'],
    ['torn over the damaged group', (f: string) => fs.truncateSync(`${f}-wal-fec`, fs.statSync(`${f}-wal-fec`).size - 100), 'unprotected-tail'],
    ['garbage', (f: string) => fs.writeFileSync(`${f}-wal-fec`, Buffer.alloc(70_000, 0xa5)), 'no-sidecar'],
  ] as const)('a %s sidecar: recovery behaves exactly like SQLite', async (_what, spoil, reason) => {
    const w = await fecWal([8, 8, 8], { repairSymbols: 2 });
    damageFrame(w.file, w.groups[2]![0] + 3, 'zero', 1);
    spoil(w.file);
    const expected = sqliteFrames(w.file);
    expect(expected).toBe(16);
    const seen = await reopen(w.file, { repairSymbols: 2 });
    expect(seen.walFrames).toBe(expected);
    expect(seen.recovery.fallbacks).toEqual({ [reason]: 1 });
  });

  it('a sidecar from another WAL generation is ignored (salts differ)', async () => {
    const a = await fecWal([8, 8], { repairSymbols: 2 });
    const b = await fecWal([8, 8], { repairSymbols: 2 });
    fs.copyFileSync(`${a.file}-wal-fec`, `${b.file}-wal-fec`);
    damageFrame(b.file, 12, 'flip', 3);
    const seen = await reopen(b.file, { repairSymbols: 2 });
    expect(seen.walFrames).toBe(sqliteFrames(b.file));
    expect(seen.walFrames).toBe(8);
    expect(seen.recovery.fallbacks).toEqual({ 'salt-mismatch': 1 });
  });

  it('a crash during a sidecar append (torn last group): the WAL is unaffected and earlier groups still repair', async () => {
    const w = await fecWal([6, 6, 6], { repairSymbols: 1 });
    fs.truncateSync(`${w.file}-wal-fec`, fs.statSync(`${w.file}-wal-fec`).size - 37);
    let seen = await reopen(w.file, { repairSymbols: 1 });
    expect(seen.walFrames).toBe(18);
    expect(seen.recovery.fallbacks).toEqual({});
    fs.rmSync(`${w.file}-shm`);
    damageFrame(w.file, 4, 'torn', 2);
    seen = await reopen(w.file, { repairSymbols: 1 });
    expect(seen.walFrames).toBe(18);
    expect(seen.recovery.repairedFrames).toBe(1);
    expect(sqliteIntegrity(w.file)).toEqual(['ok']);
  });
});

describe('a crash just after a WAL restart, before the sidecar caught up (its writer is asynchronous)', () => {
  /** Generation 1 (two 8-frame commits), a RESTART checkpoint, generation 2 (two 4-frame commits) with its last frame torn. */
  async function restartedWal() {
    const { bytes, pages } = baseImage();
    const file = path.join(dir, `restart${seq++}.db`);
    fs.writeFileSync(file, bytes);
    const page = (p: number) => ({ pgno: p, data: bytes.subarray((p - 1) * PS, p * PS) });
    const run = async (sizes: number[], restart: boolean) => {
      const store = await open(file, { fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true });
      if (restart) await store.checkpoint('restart');
      let p = 1;
      for (const size of sizes) await store.commit(Array.from({ length: size }, () => page(p++)), { dbSize: pages });
      await store.close(); // waits for the sidecar writer
      return { wal: fs.readFileSync(`${file}-wal`), sidecar: fs.readFileSync(`${file}-wal-fec`) };
    };
    const gen1 = await run([8, 8], false);
    const gen2 = await run([4, 4], true);
    expect(gen2.wal.readUInt32BE(16)).toBe((gen1.wal.readUInt32BE(16) + 1) >>> 0); // salt-1: the WAL restarted
    expect(damageFrame(file, 8, 'torn', 1)).toBe(true); // the last batch's commit frame, cut short
    fs.rmSync(`${file}-shm`, { force: true });
    return { file, gen1, gen2 };
  }

  it.each([
    ['holds only the previous generation (the new groups not written yet)', (w: { gen1: { sidecar: Buffer } }) => w.gen1.sidecar],
    ['is empty (truncated for the new generation, its first group not written yet)', () => Buffer.alloc(0)],
    ['holds a torn first group of the new generation', (w: { gen2: { sidecar: Buffer } }) => w.gen2.sidecar.subarray(0, w.gen2.sidecar.length / 2 - 100)],
  ])('the sidecar %s: an unprotected tail, not damage', async (_what, sidecar) => {
    const w = await restartedWal();
    fs.writeFileSync(`${w.file}-wal-fec`, sidecar(w));
    expect(sqliteFrames(w.file)).toBe(4);
    const seen = await reopen(w.file, { repairSymbols: 2 });
    expect(seen.walFrames).toBe(4);
    expect(seen.recovery.fallbacks).toEqual({ 'unprotected-tail': 1 });
  });
});

describe('two walnut processes writing one database with fec on', () => {
  it('both protect their own batches in one sidecar, and recovery repairs frames of either', async () => {
    const { bytes } = baseImage();
    const file = path.join(dir, 'two.db');
    fs.writeFileSync(file, bytes);
    const image = path.join(dir, 'two.image');
    fs.writeFileSync(image, bytes);
    const child = path.join(__dirname, '..', 'helpers', 'fec-writer-child.js');
    const [a, b] = await Promise.all([runNode(child, [file, image, '0', '24', '9']), runNode(child, [file, image, '200', '24', '7'])]);
    expect(a.stdout).toMatch(/^done /);
    expect(b.stdout).toMatch(/^done /);
    const ranges = (out: string) => out.trim().slice(5).split(',').map((r) => r.split('-').map(Number) as [number, number]);
    const all = [...ranges(a.stdout), ...ranges(b.stdout)];
    const total = 24 * 9 + 24 * 7;
    expect(Math.max(...all.map((r) => r[1]))).toBe(total);
    fs.rmSync(`${file}-shm`, { force: true });
    const wal = fs.readFileSync(`${file}-wal`);
    // two frames of one of a's batches and two of one of b's
    const [a1] = ranges(a.stdout)[5]!;
    const [b1] = ranges(b.stdout)[17]!;
    for (const f of [a1, a1 + 8, b1 + 1, b1 + 6]) damageFrame(file, f, 'flip', f);
    const seen = await reopen(file, { repairSymbols: 2 });
    expect(seen.walFrames).toBe(total);
    expect(seen.recovery).toMatchObject({ repairedFrames: 4, repairedGroups: 2, fallbacks: {} });
    expect(fs.readFileSync(`${file}-wal`).equals(wal)).toBe(true);
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });
});

describe('fec with the other store modes', () => {
  it("lockingMode 'exclusive' (heap wal-index, recovery at every open) and synchronous 'off'", async () => {
    const { bytes, pages } = baseImage();
    const file = path.join(dir, 'excl.db');
    fs.writeFileSync(file, bytes);
    const opts = { fec: { repairSymbols: 2 }, lockingMode: 'exclusive' as const, synchronous: 'off' as const, autoCheckpoint: false as const, keepWal: true };
    let store = await open(file, opts);
    for (let b = 0; b < 3; b++) await store.commit(Array.from({ length: 8 }, (_, i) => ({ pgno: 1 + b * 8 + i, data: bytes.subarray((b * 8 + i) * PS, (b * 8 + i + 1) * PS) })), { dbSize: pages });
    await store.close();
    expect(fs.existsSync(`${file}-shm`)).toBe(false);
    const wal = fs.readFileSync(`${file}-wal`).subarray(0, frameAt(25));
    damageFrame(file, 5, 'zero', 0);
    damageFrame(file, 20, 'flip', 4);
    store = await open(file, opts);
    const snap = await store.snapshot();
    expect(snap.mxFrame).toBe(24);
    snap.release();
    expect((store.metrics().fec as { recovery: unknown }).recovery).toMatchObject({ repairedFrames: 2, repairedGroups: 2 });
    await store.close();
    expect(fs.readFileSync(`${file}-wal`).subarray(0, frameAt(25)).equals(wal)).toBe(true);
  });
});

describe('writing after a recovery that dropped frames', () => {
  it('the next commit overwrites the dropped frames (a torn batch left whole frames without its commit frame)', async () => {
    const w = await fecWal([3, 3], { repairSymbols: 1 });
    fs.rmSync(`${w.file}-wal-fec`); // as if written without fec: nothing to repair from
    damageFrame(w.file, 6, 'flip', 2); // the second batch's commit frame: frames 4, 5 stay whole but uncommitted
    for (const fec of [false, true] as const) {
      const copy = path.join(dir, `after-drop-${fec}.db`);
      fs.copyFileSync(w.file, copy);
      fs.copyFileSync(`${w.file}-wal`, `${copy}-wal`);
      const { bytes, pages } = baseImage();
      const store = await open(copy, { autoCheckpoint: false, keepWal: true, fec: fec ? { repairSymbols: 1 } : false });
      const r = await store.commit([{ pgno: 7, data: bytes.subarray(6 * PS, 7 * PS) }], { dbSize: pages });
      await store.close();
      expect([r.firstFrame, r.lastFrame]).toEqual([4, 4]);
      expect(sqliteFrames(copy)).toBe(4);
      expect(sqliteIntegrity(copy)).toEqual(['ok']);
    }
  });
});

describe('the sidecar follows the WAL', () => {
  it('a WAL restart truncates the sidecar to the new generation; the last close removes it with the WAL', async () => {
    const { bytes, pages } = baseImage();
    const file = path.join(dir, 'life.db');
    fs.writeFileSync(file, bytes);
    fs.chmodSync(file, 0o640);
    const store = await open(file, { fec: { repairSymbols: 2 }, autoCheckpoint: false });
    expect(fs.statSync(`${file}-wal-fec`).mode & 0o777).toBe(0o640); // the database's, through the WAL
    const page = (p: number) => ({ pgno: p, data: bytes.subarray((p - 1) * PS, p * PS) });
    await store.commit([page(1), page(2), page(3)], { dbSize: pages });
    await store.commit([page(4)], { dbSize: pages });
    const sizeBefore = await flushAndSize(store, file, 4);
    expect(sizeBefore).toBeGreaterThan(4 * PS);
    await store.checkpoint('truncate');
    // the WAL is empty: so is its sidecar (its truncation is a queued marker of no bytes, so
    // queuedBytes says nothing about it: wait for the file itself, without a timing guess)
    expect(await sizeOnceSettled(file, (size) => size === 0)).toBe(0);
    await store.commit([page(5)], { dbSize: pages }); // a new generation
    const sizeAfter = await flushAndSize(store, file, 5);
    expect(sizeAfter).toBeGreaterThan(PS);
    expect(sizeAfter).toBeLessThan(sizeBefore);
    await store.close();
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
    expect(fs.existsSync(`${file}-wal-fec`)).toBe(false);
  });
});

/** The sidecar's size once `settled` holds for it, or as it is after WAIT_MS (the caller's expect reports it). */
async function sizeOnceSettled(file: string, settled: (size: number) => boolean): Promise<number> {
  let size = fs.statSync(`${file}-wal-fec`).size;
  for (const end = Date.now() + WAIT_MS; !settled(size) && Date.now() < end; ) {
    await new Promise((r) => setTimeout(r, 10));
    size = fs.statSync(`${file}-wal-fec`).size;
  }
  return size;
}

/**
 * The sidecar's size once the groups protecting `frames` frames (this store's count since it
 * opened) are written: the writer counts a group's frames after its write. (It waited 1 s at most
 * for the queue to drain, then 20 ms: a loaded machine read the size before the write.)
 */
async function flushAndSize(store: Awaited<ReturnType<typeof open>>, file: string, frames: number): Promise<number> {
  const fec = () => store.metrics().fec as { frames: number; queuedBytes: number };
  await until(() => fec().frames >= frames, WAIT_MS, fec);
  return fs.statSync(`${file}-wal-fec`).size;
}

describe('walnut verify and recover --repair', () => {
  const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
  const walnut = (...args: string[]) => spawnSync(process.execPath, [bin, ...args, '--json'], { encoding: 'utf8' });

  it('verify reports repairable frames; recover --repair repairs them; then verify is clean', async () => {
    const w = await fecWal([12, 12], { repairSymbols: 2 });
    damageFrame(w.file, 15, 'flip', 5);
    damageFrame(w.file, 20, 'zero', 0);
    expect(inspect(w.file).fecSidecar).toMatchObject({ groups: 2, currentGroups: 2, protectedFrames: 24, invalidTailBytes: 0 });
    const v = walnut('verify', w.file);
    expect(v.status).toBe(1);
    const report = JSON.parse(v.stdout);
    expect(report.issues).toContainEqual(expect.objectContaining({ level: 1, kind: 'wal-damage-repairable', frame: 15 }));
    expect(inspect(w.file).walFrames).toBe(12);
    const rec = walnut('recover', w.file, '--repair');
    expect(rec.stderr).toBe('');
    expect(JSON.parse(rec.stdout)).toMatchObject({ walFrames: 24, repairedFrames: 2, fallback: null });
    expect(fs.readFileSync(`${w.file}-wal`).equals(w.wal)).toBe(true);
    expect((await verify(w.file, 5)).issues).toEqual([]);
  });

  it('verify does not call a torn last batch damage (no sidecar, or past the frames it protects)', async () => {
    const w = await fecWal([12, 12], { repairSymbols: 1 });
    // the last batch cut short, as by a crash before its sidecar group was written
    fs.truncateSync(`${w.file}-wal`, frameAt(20) + 700);
    fs.truncateSync(`${w.file}-wal-fec`, fs.statSync(`${w.file}-wal-fec`).size - 10);
    expect((await verify(w.file, 1)).issues.filter((i) => i.kind.startsWith('wal-damage'))).toEqual([]);
    fs.rmSync(`${w.file}-wal-fec`);
    expect((await verify(w.file, 1)).issues.filter((i) => i.kind.startsWith('wal-damage'))).toEqual([]);
  });

  it('verify audits every group: damage in three groups, two repairable and one not', async () => {
    const w = await fecWal([10, 10, 10], { repairSymbols: 1 });
    damageFrame(w.file, 3, 'flip', 1);
    damageFrame(w.file, 14, 'zero', 2);
    damageFrame(w.file, 15, 'flip', 3);
    damageFrame(w.file, 27, 'torn', 4);
    const issues = (await verify(w.file, 1)).issues.filter((i) => i.kind.startsWith('wal-damage'));
    expect(issues.map((i) => [i.kind, i.frame])).toEqual([
      ['wal-damage-repairable', 3],
      ['wal-damage', 14],
      ['wal-damage-repairable', 27],
    ]);
    expect(issues[0]!.message).toMatch(/recovery stops before frame 3/);
    expect(issues[1]!.message).toMatch(/frames 14, 15 .*too-many-damaged/);
  });

  it('a stale group (its frames rewritten by a writer without fec after a truncating recovery) is neither damage nor used', async () => {
    const w = await fecWal([10, 10], { repairSymbols: 2 });
    fs.truncateSync(`${w.file}-wal`, frameAt(11)); // batch 2 lost: recovery keeps frames 1..10
    const { bytes, pages } = baseImage();
    const plain = await open(w.file, { autoCheckpoint: false, keepWal: true }); // no fec: the sidecar is not touched
    const other = Array.from({ length: 10 }, (_, i) => ({ pgno: 100 + i, data: bytes.subarray((99 + i) * PS, (100 + i) * PS) }));
    const r = await plain.commit(other, { dbSize: pages });
    await plain.close();
    expect([r.firstFrame, r.lastFrame]).toEqual([11, 20]); // the frames group 2 covered, new contents
    expect((await verify(w.file, 1)).issues).toEqual([]);
    fs.rmSync(`${w.file}-shm`, { force: true });
    const seen = await reopen(w.file, { repairSymbols: 2 });
    expect(seen.walFrames).toBe(20);
    expect(seen.recovery).toMatchObject({ repairedFrames: 0, fallbacks: {} });
  });

  it('a stale group is never used to bring back replaced frames (a writer without fec appended 2 frames where it had 10)', async () => {
    const w = await fecWal([10, 10], { repairSymbols: 2 });
    fs.truncateSync(`${w.file}-wal`, frameAt(11));
    const { bytes, pages } = baseImage();
    const plain = await open(w.file, { autoCheckpoint: false, keepWal: true });
    const r = await plain.commit([300, 301].map((p) => ({ pgno: p, data: bytes.subarray((p - 1) * PS, p * PS) })), { dbSize: pages });
    await plain.close();
    expect([r.firstFrame, r.lastFrame]).toEqual([11, 12]);
    const newFrame12 = fs.readFileSync(`${w.file}-wal`).subarray(frameAt(12), frameAt(13));
    damageFrame(w.file, 11, 'flip', 3);
    fs.rmSync(`${w.file}-shm`, { force: true });
    const expected = sqliteFrames(w.file);
    expect(expected).toBe(10);
    const seen = await reopen(w.file, { repairSymbols: 2 });
    expect(seen.walFrames).toBe(expected); // not 20 frames of the replaced batch
    expect(seen.recovery.fallbacks).toEqual({ 'group-mismatch': 1 });
    expect(fs.readFileSync(`${w.file}-wal`).subarray(frameAt(12), frameAt(13)).equals(newFrame12)).toBe(true);
  });

  it('after a recovery that falls back, the groups past the kept frames are pruned; new groups protect new frames', async () => {
    const w = await fecWal([10, 10, 10], { repairSymbols: 1 });
    damageFrame(w.file, 14, 'zero', 1);
    damageFrame(w.file, 16, 'zero', 2);
    let seen = await reopen(w.file, { repairSymbols: 1 });
    expect(seen.walFrames).toBe(10);
    expect(seen.recovery.fallbacks).toEqual({ 'too-many-damaged': 1 });
    expect(inspect(w.file).fecSidecar).toMatchObject({ groups: 1, currentGroups: 1, protectedFrames: 10 });
    // new commits with fec reuse frames 11.. under the same salts, with groups of their own
    const { bytes, pages } = baseImage();
    const store = await open(w.file, { fec: { repairSymbols: 1 }, autoCheckpoint: false, keepWal: true });
    const r = await store.commit([200, 201, 202].map((p) => ({ pgno: p, data: bytes.subarray((p - 1) * PS, p * PS) })), { dbSize: pages });
    await store.close();
    expect(r.firstFrame).toBe(11);
    const wal = fs.readFileSync(`${w.file}-wal`).subarray(0, frameAt(14));
    fs.rmSync(`${w.file}-shm`, { force: true });
    damageFrame(w.file, 12, 'flip', 5);
    seen = await reopen(w.file, { repairSymbols: 1 });
    expect(seen.walFrames).toBe(13);
    expect(seen.recovery).toMatchObject({ repairedFrames: 1, fallbacks: {} });
    expect(fs.readFileSync(`${w.file}-wal`).subarray(0, frameAt(14)).equals(wal)).toBe(true);
  });

  it('verify names the reason when the damage is not repairable', async () => {
    const w = await fecWal([12, 12], { repairSymbols: 1 });
    damageFrame(w.file, 15, 'flip', 5);
    damageFrame(w.file, 16, 'flip', 6);
    const r = await verify(w.file, 1);
    expect(r.issues).toContainEqual(expect.objectContaining({ kind: 'wal-damage', frame: 15 }));
    expect(r.issues.find((i) => i.kind === 'wal-damage')!.message).toMatch(/too-many-damaged/);
  });
});
