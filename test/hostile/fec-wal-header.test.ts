// Hostile: damage to the WAL's own 32-byte header. One flipped bit in its magic, version, page
// size, checkpoint sequence, salts or checksum made SQLite and walnut read the whole WAL as
// empty: every commit not checkpointed was gone, and `walnut recover --repair` could not bring it
// back though the FEC sidecar held parity for every frame. Sidecar groups now carry a copy of the
// header of their generation (fec/sidecar.ts, version 2); recovery restores a damaged header
// from it only when the frames after it continue its salts and checksum chain and the header on
// disk is a damaged form of it, never another generation's header made into the old one.
//
// The WAL is the scale the project asks of interop cases: 17,000+ frames over five -shm
// segments, written by walnut/sql, a python3 sqlite3 process (whose frames get groups when
// walnut next opens the database with fec) and the raw store.
// A damaged header with a damaged frame 1 (the WAL's first sector) was refused: no frame continued
// the copy's chain. Now the sidecar's group over frame 1, written after that header, vouches for
// the copy when frame 1 is what fails it, and frame 1 is rebuilt from the group.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { open, recoverWithRepair, verify } from '../../lib/index';
import { encodeGroup, readGroup, scanSidecar } from '../../lib/fec/sidecar';
import { decodeWalHeader, encodeWalHeader } from '../../lib/format/wal-header';
import { WalnutFile } from '../../lib/io/file';
import { openDatabase } from '../../lib/sql';
import { growWal, segmentEnd } from '../helpers/large-wal';
import { tmpDir } from '../helpers/tmp';

const PS = 1024;
const FRAMES = segmentEnd(3) + 600; // into the fifth -shm segment
const FEC = { repairSymbols: 2 } as const;
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');

function python(file: string, code: string): string {
  return execFileSync('python3', ['-c', `import sqlite3, sys, os, hashlib\nc = sqlite3.connect(sys.argv[1], isolation_level=None)\n${code}`, file], { encoding: 'utf8' }).trim();
}

/** What sqlite3 sees: integrity_check, the row count and a hash of every row. (It is the last connection: it checkpoints and removes the WAL.) */
function sqliteView(file: string): { integrity: string; rows: number; hash: string } {
  const [integrity, rows, hash] = python(file, `rows = c.execute('SELECT id, v FROM t ORDER BY id').fetchall()\nprint(c.execute('PRAGMA integrity_check').fetchone()[0], len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())`).split(' ');
  return { integrity: integrity!, rows: Number(rows), hash: hash! };
}

const SUFFIXES = ['', '-wal', '-wal-fec'];

function copyDb(from: string, to: string): void {
  for (const s of SUFFIXES) if (fs.existsSync(from + s)) fs.copyFileSync(from + s, to + s);
}

function removeDb(file: string): void {
  for (const s of [...SUFFIXES, '-shm']) fs.rmSync(file + s, { force: true });
}

function readAt(file: string, offset: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    fs.readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

function writeAt(file: string, offset: number, bytes: Uint8Array): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

function flipBit(file: string, offset: number, bit: number): void {
  const b = readAt(file, offset, 1);
  b[0]! ^= 1 << bit;
  writeAt(file, offset, b);
}

function sidecarGroups(file: string) {
  const f = WalnutFile.openSync(`${file}-wal-fec`, { readOnly: true });
  try {
    return scanSidecar(f).groups;
  } finally {
    f.closeSync();
  }
}

/** Rewrites the sidecar with every group as version 1 (no header copy): a sidecar from before header protection. */
function toVersion1(file: string): void {
  const f = WalnutFile.openSync(`${file}-wal-fec`, { readOnly: true });
  const out: Uint8Array[] = [];
  try {
    for (const ref of scanSidecar(f).groups) out.push(encodeGroup({ ...readGroup(f, ref), version: 1, walHeader: null }, 1));
  } finally {
    f.closeSync();
  }
  fs.writeFileSync(`${file}-wal-fec`, Buffer.concat(out));
}

const pad = (i: number) => `${i}:`.padEnd(300, String.fromCharCode(97 + (i % 26)));

let dir: string;
let base: string;
let baseHeader: Buffer;
let expected: { integrity: string; rows: number; hash: string };
let dbFileOnly: number;

beforeAll(async () => {
  dir = tmpDir('fec-wal-header');
  base = path.join(dir, 'base.db');
  python(base, `c.execute('PRAGMA page_size=${PS}'); c.execute('PRAGMA journal_mode=WAL'); c.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)'); c.execute("INSERT INTO t(v) VALUES ('in the database file')"); c.close()`);
  const sqlOptions = { fec: FEC, autoCheckpoint: false, keepWal: true, readConnections: 0 } as const;
  let db = await openDatabase(base, sqlOptions);
  for (let i = 1; i <= 60; i++) await db.run('INSERT INTO t(v) VALUES (?)', [`walnut ${pad(i)}`]);
  await db.close();
  // sqlite3 commits beside an open store (so its close, not the last, checkpoints nothing)
  let store = await open(base, { fec: FEC, autoCheckpoint: false, keepWal: true });
  python(base, `c.execute('PRAGMA busy_timeout=10000'); c.execute('PRAGMA wal_autocheckpoint=0')\nfor i in range(40): c.execute('INSERT INTO t(v) VALUES (?)', ('sqlite3 %d ' % i + 'x' * 280,))\nc.close()`);
  await store.close();
  // walnut/sql with fec gives sqlite3's frames their groups at open, and commits more
  db = await openDatabase(base, sqlOptions);
  for (let i = 61; i <= 120; i++) await db.run('INSERT INTO t(v) VALUES (?)', [`walnut ${pad(i)}`]);
  await db.close();
  // the WAL grows past four -shm segments
  store = await open(base, { fec: FEC, autoCheckpoint: false, keepWal: true });
  await growWal(store, FRAMES);
  await store.close();
  baseHeader = readAt(`${base}-wal`, 0, 32);
  expect(decodeWalHeader(baseHeader).status).toBe('ok');
  const ref = path.join(dir, 'reference.db');
  copyDb(base, ref);
  expected = sqliteView(ref);
  expect(expected).toMatchObject({ integrity: 'ok', rows: 1 + 120 + 40 });
  removeDb(ref);
  // what is left when the WAL reads as empty: the database file's one row
  dbFileOnly = 1;
}, 300_000);

/** Each field of the header, and a damage to it (a flipped bit; a word overwritten). No single flipped bit turns 1024 into another valid page size. */
const cases: { field: string; damage: (wal: string) => void; status: string }[] = [
  { field: 'magic', damage: (w) => flipBit(w, 1, 3), status: 'bad-magic' },
  { field: 'magic byte order bit', damage: (w) => flipBit(w, 3, 0), status: 'bad-checksum' },
  { field: 'format version', damage: (w) => flipBit(w, 6, 5), status: 'bad-checksum' },
  { field: 'page size (to an invalid one)', damage: (w) => flipBit(w, 10, 3), status: 'bad-page-size' },
  { field: 'page size (to another valid one, 4096)', damage: (w) => writeAt(w, 8, Buffer.from([0, 0, 0x10, 0])), status: 'bad-checksum' },
  { field: 'checkpoint sequence', damage: (w) => flipBit(w, 15, 6), status: 'bad-checksum' },
  { field: 'salt-1', damage: (w) => flipBit(w, 18, 0), status: 'bad-checksum' },
  { field: 'salt-2 (zeroed)', damage: (w) => writeAt(w, 20, new Uint8Array(4)), status: 'bad-checksum' },
  { field: 'checksum-1', damage: (w) => flipBit(w, 25, 7), status: 'bad-checksum' },
  { field: 'checksum-2', damage: (w) => flipBit(w, 31, 2), status: 'bad-checksum' },
];

describe('a damaged WAL header with the FEC sidecar on', () => {
  it('every sidecar group carries the header of its generation (version 2), and the groups cover every frame, sqlite3\'s too', () => {
    const groups = sidecarGroups(base);
    expect(groups.every((g) => g.version === 2 && g.walHeader !== null && Buffer.from(g.walHeader).equals(baseHeader))).toBe(true);
    expect(groups.reduce((n, g) => n + g.k, 0)).toBeGreaterThanOrEqual(FRAMES);
  });

  for (const [n, c] of cases.entries()) {
    it(`${c.field}: verify calls it repairable; ${n % 2 === 0 ? 'recover --repair' : 'the first open with fec'} restores it; sqlite3 sees every row`, async () => {
      const file = path.join(dir, `case${n}.db`);
      copyDb(base, file);
      c.damage(`${file}-wal`);
      expect(decodeWalHeader(readAt(`${file}-wal`, 0, 32)).status).toBe(c.status);

      const v = await verify(file, 1);
      expect(v.issues).toContainEqual(expect.objectContaining({ kind: 'wal-header-repairable' }));
      if (n % 2 === 0) {
        const rec = spawnSync(process.execPath, [bin, 'recover', file, '--repair', '--json'], { encoding: 'utf8' });
        expect(rec.stderr).toBe('');
        const out = JSON.parse(rec.stdout);
        expect(out).toMatchObject({ fallback: null, repairedFrames: 0 });
        expect(out.restoredHeader).toMatchObject({ was: c.status, salts: [baseHeader.readUInt32BE(16), baseHeader.readUInt32BE(20)] });
        expect(out.walFrames).toBeGreaterThanOrEqual(FRAMES);
      } else {
        const store = await open(file, { fec: FEC, autoCheckpoint: false, keepWal: true });
        const recovery = store.metrics().fec!.recovery;
        expect(store.metrics().walFrames).toBeGreaterThanOrEqual(FRAMES);
        expect(store.metrics({ format: 'prometheus' })).toMatch(/_fec_restored_headers_total 1\n/);
        await store.close();
        expect(recovery).toMatchObject({ restoredHeaders: 1, fallbacks: {} });
      }
      expect(readAt(`${file}-wal`, 0, 32).equals(baseHeader)).toBe(true);
      expect((await verify(file, 5)).issues).toEqual([]);
      expect(sqliteView(file)).toEqual(expected);
      removeDb(file);
    }, 120_000);
  }

  it('a damaged header and damaged frames deep in the WAL: one recover --repair restores the header, then repairs the frames', async () => {
    const file = path.join(dir, 'both.db');
    copyDb(base, file);
    const wal = `${file}-wal`;
    const frameAt = (f: number) => 32 + (f - 1) * (24 + PS);
    flipBit(wal, frameAt(segmentEnd(1) + 7) + 24 + 100, 5); // a page in the third -shm segment
    writeAt(wal, frameAt(segmentEnd(3) + 50) + 24, new Uint8Array(PS)); // a page zeroed in the fifth
    flipBit(wal, 16, 7); // salt-1
    const r = await recoverWithRepair(file);
    expect(r).toMatchObject({ repairedFrames: 2, fallback: null, restoredHeader: { was: 'bad-checksum', from: 'sidecar' } });
    expect(r.walFrames).toBeGreaterThanOrEqual(FRAMES);
    expect(readAt(wal, 0, 32).equals(baseHeader)).toBe(true);
    expect(sqliteView(file)).toEqual(expected);
    removeDb(file);
  });

  // damage to the WAL's first bytes takes the header and frame 1 together (one sector): no frame
  // continued the sidecar copy's chain, so the copy was refused (header-mismatch) and the whole
  // WAL read as empty, though the sidecar's group over frame 1 (written after that header: its
  // chain word) held the parity to rebuild it
  it.each([
    ['salt-1 and a bit of frame 1\'s page', (wal: string) => [flipBit(wal, 16, 7), flipBit(wal, 32 + 24 + 100, 5)]],
    ['checksum-1, frame 1\'s page number and its salt-2', (wal: string) => [flipBit(wal, 25, 1), flipBit(wal, 32 + 3, 0), flipBit(wal, 32 + 13, 4)]],
  ])('a damaged header and a damaged frame 1 (%s): restored from the sidecar\'s copy, frame 1 rebuilt, sqlite3 sees every row', async (what, damage) => {
    const file = path.join(dir, `first-sector-${what.length}.db`);
    copyDb(base, file);
    damage(`${file}-wal`);
    expect((await verify(file, 1)).issues).toContainEqual(expect.objectContaining({ kind: 'wal-header-repairable' }));
    const r = await recoverWithRepair(file);
    expect(r).toMatchObject({ repairedFrames: 1, fallback: null, restoredHeader: { from: 'sidecar', salts: [baseHeader.readUInt32BE(16), baseHeader.readUInt32BE(20)] } });
    expect(r.walFrames).toBeGreaterThanOrEqual(FRAMES);
    expect(readAt(`${file}-wal`, 0, 32).equals(baseHeader)).toBe(true);
    expect(sqliteView(file)).toEqual(expected);
    removeDb(file);
  });

  it('without the repair, sqlite3 reads the damaged WAL as empty (what the repair brings back)', () => {
    const file = path.join(dir, 'control.db');
    copyDb(base, file);
    flipBit(`${file}-wal`, 18, 0);
    expect(sqliteView(file)).toMatchObject({ integrity: 'ok', rows: dbFileOnly });
    removeDb(file);
  });
});

describe('a damaged header after a WAL restart', () => {
  it('is restored to the new generation\'s header, not the old one, whatever order the sidecar holds them in', async () => {
    const file = path.join(dir, 'restart.db');
    copyDb(base, file);
    const oldSidecar = fs.readFileSync(`${file}-wal-fec`);
    const store = await open(file, { fec: FEC, autoCheckpoint: false, keepWal: true });
    await store.checkpoint('restart');
    const db = await store.snapshot();
    const dbSize = db.dbSize;
    const pages = await Promise.all(Array.from({ length: dbSize }, (_, k) => db.read(k + 1)));
    db.release();
    for (let i = 0; i < 3; i++) await store.commit(pages.map((data, k) => ({ pgno: k + 1, data })));
    await store.close();
    const newHeader = readAt(`${file}-wal`, 0, 32);
    const h = decodeWalHeader(newHeader).header!;
    expect([h.salt1, h.salt2]).not.toEqual([baseHeader.readUInt32BE(16), baseHeader.readUInt32BE(20)]);
    // the new generation's frames are few: the old generation's lie after them, intact but for
    // the first one's header (zeroed by the last append: its tail, wal-file.ts)
    expect(readAt(`${file}-wal`, 32 + dbSize * 3 * (24 + PS), 24).every((b) => b === 0)).toBe(true);
    const after = readAt(`${file}-wal`, 32 + (dbSize * 3 + 1) * (24 + PS), 24);
    expect([after.readUInt32BE(8), after.readUInt32BE(12)]).toEqual([baseHeader.readUInt32BE(16), baseHeader.readUInt32BE(20)]);
    // the old generation's groups after the new one's: newest in file order is the old one
    fs.writeFileSync(`${file}-wal-fec`, Buffer.concat([fs.readFileSync(`${file}-wal-fec`), oldSidecar]));
    expect(new Set(sidecarGroups(file).map((g) => g.salts[1]))).toEqual(new Set([h.salt2, baseHeader.readUInt32BE(20)]));
    flipBit(`${file}-wal`, 18, 0); // salt-1
    const r = await recoverWithRepair(file);
    expect(r.restoredHeader).toMatchObject({ salts: [h.salt1, h.salt2], walFrames: dbSize * 3 });
    expect(readAt(`${file}-wal`, 0, 32).equals(newHeader)).toBe(true);
    expect(sqliteView(file)).toEqual(expected);
    removeDb(file);
  });

  it('a generation sqlite3 started gets header copies when walnut next opens with fec; damaged, its header is restored', async () => {
    const file = path.join(dir, 'sqlite-restart.db');
    copyDb(base, file);
    // sqlite3 checkpoints and restarts the WAL (new salts, its own header), then commits; walnut's store stays open so no close removes the WAL
    let store = await open(file, { autoCheckpoint: false, keepWal: true });
    python(file, `c.execute('PRAGMA busy_timeout=10000'); c.execute('PRAGMA wal_autocheckpoint=0')\nassert c.execute('PRAGMA wal_checkpoint(RESTART)').fetchone()[0] == 0\nfor i in range(30): c.execute('INSERT INTO t(v) VALUES (?)', ('after restart %d ' % i + 'y' * 280,))\nc.close()`);
    await store.close();
    const sqliteHeader = readAt(`${file}-wal`, 0, 32);
    expect(sqliteHeader.readUInt32BE(20)).not.toBe(baseHeader.readUInt32BE(20));
    // the sidecar still holds only the old generation: its header cannot be the one restored
    expect(sidecarGroups(file).every((g) => g.salts[1] === baseHeader.readUInt32BE(20))).toBe(true);
    store = await open(file, { fec: FEC, autoCheckpoint: false, keepWal: true }); // groups for sqlite3's frames, with its header
    await store.close();
    expect(sidecarGroups(file).every((g) => g.walHeader !== null && Buffer.from(g.walHeader).equals(sqliteHeader))).toBe(true);
    const ref = path.join(dir, 'sqlite-restart-ref.db');
    copyDb(file, ref);
    const want = sqliteView(ref);
    removeDb(ref);
    expect(want).toMatchObject({ integrity: 'ok', rows: expected.rows + 30 });
    flipBit(`${file}-wal`, 13, 2); // checkpoint sequence
    const r = await recoverWithRepair(file);
    expect(r.restoredHeader).toMatchObject({ was: 'bad-checksum', salts: [sqliteHeader.readUInt32BE(16), sqliteHeader.readUInt32BE(20)] });
    expect(readAt(`${file}-wal`, 0, 32).equals(sqliteHeader)).toBe(true);
    expect(sqliteView(file)).toEqual(want);
    removeDb(file);
  });

  for (const version of [2, 1]) it(`is not restored to the old generation when the sidecar (version ${version}) knows only the old one: its frames stay stale`, async () => {
    // a restart's header whose frames never came (a walnut restart syncs the header before its
    // frames), over the old generation's frames: they are history, not the WAL's content. The
    // sidecar knows only the old generation (its copies, or with version 1 the header frame 1
    // and its group give). Damaged, the new header still differs from the old one in more words
    // than damage makes: nothing is restored, the old frames stay invalid.
    const file = path.join(dir, `stale-v${version}.db`);
    copyDb(base, file);
    if (version === 1) toVersion1(file);
    const old = decodeWalHeader(baseHeader).header!;
    const restart = encodeWalHeader({ pageSize: PS, checkpointSeq: old.checkpointSeq + 1, salt1: old.salt1 + 1, salt2: (old.salt2 ^ 0x5a5a1234) >>> 0, magic: old.magic }).bytes;
    writeAt(`${file}-wal`, 0, restart);
    flipBit(`${file}-wal`, 22, 4); // salt-2
    const damaged = readAt(`${file}-wal`, 0, 32);
    const r = await recoverWithRepair(file);
    expect(r.restoredHeader).toBeNull();
    expect(r.fallback).toMatchObject({ frame: 0, reason: 'header-mismatch' });
    expect(readAt(`${file}-wal`, 0, 32).equals(damaged)).toBe(true);
    expect(sqliteView(file)).toMatchObject({ integrity: 'ok', rows: dbFileOnly });
    removeDb(file);
  });
});

describe('a sidecar written before header copies (version 1)', () => {
  it('still repairs damaged frames, and restores a damaged header from frame 1 and its group (checkpoint sequence and checksum solved from the frame)', async () => {
    const file = path.join(dir, 'v1.db');
    copyDb(base, file);
    toVersion1(file);
    expect(sidecarGroups(file).every((g) => g.version === 1 && g.walHeader === null)).toBe(true);
    // a damaged frame deep in the WAL (the fourth -shm segment) is repaired from version 1 groups
    flipBit(`${file}-wal`, 32 + (segmentEnd(2) + 100) * (24 + PS) + 24 + 500, 1);
    const r = await recoverWithRepair(file);
    expect(r).toMatchObject({ repairedFrames: 1, fallback: null, restoredHeader: null });
    expect(r.walFrames).toBeGreaterThanOrEqual(FRAMES);
    for (const [offset, bit] of [[13, 3], [26, 0], [1, 4]] as const) {
      flipBit(`${file}-wal`, offset, bit); // checkpoint sequence, checksum-1, magic
      expect((await verify(file, 1)).issues).toContainEqual(expect.objectContaining({ kind: 'wal-header-repairable' }));
      const again = await recoverWithRepair(file);
      expect(again).toMatchObject({ fallback: null, restoredHeader: { salts: [baseHeader.readUInt32BE(16), baseHeader.readUInt32BE(20)], checkpointSeq: baseHeader.readUInt32BE(12) } });
      expect(readAt(`${file}-wal`, 0, 32).equals(baseHeader)).toBe(true);
    }
    expect(sqliteView(file)).toEqual(expected);
    removeDb(file);
  });

  it('without its group over frame 1, a damaged header is still restored from frame 1 alone (its salts and checksum solve it; the frames continue it)', async () => {
    const file = path.join(dir, 'v1-no-first.db');
    copyDb(base, file);
    toVersion1(file);
    const first = sidecarGroups(file)[0]!;
    expect(first.firstFrame).toBe(1);
    fs.writeFileSync(`${file}-wal-fec`, fs.readFileSync(`${file}-wal-fec`).subarray(first.length));
    flipBit(`${file}-wal`, 10, 1); // page size
    expect((await verify(file, 1)).issues).toContainEqual(expect.objectContaining({ kind: 'wal-header-repairable' }));
    const r = await recoverWithRepair(file);
    expect(r).toMatchObject({ fallback: null, restoredHeader: { was: 'bad-page-size', from: 'frame-1', salts: [baseHeader.readUInt32BE(16), baseHeader.readUInt32BE(20)], checkpointSeq: baseHeader.readUInt32BE(12) } });
    expect(r.walFrames).toBeGreaterThanOrEqual(FRAMES);
    expect(readAt(`${file}-wal`, 0, 32).equals(baseHeader)).toBe(true);
    expect(sqliteView(file)).toEqual(expected);
    removeDb(file);
  });

  it('without its group over frame 1 and with frame 1 damaged too, a damaged header is refused clearly (header-unprotected), left as it is, and the sidecar kept', async () => {
    const file = path.join(dir, 'v1-no-first-frame1.db');
    copyDb(base, file);
    toVersion1(file);
    const first = sidecarGroups(file)[0]!;
    fs.writeFileSync(`${file}-wal-fec`, fs.readFileSync(`${file}-wal-fec`).subarray(first.length));
    flipBit(`${file}-wal`, 10, 1); // page size
    flipBit(`${file}-wal`, 32 + 24 + 100, 5); // frame 1's page: its checksum no longer solves a header
    const damaged = readAt(`${file}-wal`, 0, 32);
    const v = await verify(file, 1);
    expect(v.issues).toContainEqual(expect.objectContaining({ kind: 'wal-header', message: expect.stringContaining('header-unprotected') }));
    const r = await recoverWithRepair(file);
    expect(r).toMatchObject({ walFrames: 0, restoredHeader: null, fallback: { frame: 0, reason: 'header-unprotected' } });
    expect(r.fallback!.message).toContain('version 1');
    expect(readAt(`${file}-wal`, 0, 32).equals(damaged)).toBe(true);
    expect(sidecarGroups(file).length).toBeGreaterThan(0); // not pruned: the groups are all that could still restore it
    removeDb(file);
  });
});

describe('a damaged header with no fitting copy in the sidecar: frame 1 pins it down', () => {
  it('sqlite3 restarted the WAL and committed, the sidecar knows only the old generation: the new header is restored from frame 1, not refused', async () => {
    const file = path.join(dir, 'frame1-sqlite-restart.db');
    copyDb(base, file);
    const store = await open(file, { autoCheckpoint: false, keepWal: true }); // so sqlite3's close does not checkpoint the WAL away
    python(file, `c.execute('PRAGMA busy_timeout=10000'); c.execute('PRAGMA wal_autocheckpoint=0')\nassert c.execute('PRAGMA wal_checkpoint(RESTART)').fetchone()[0] == 0\nfor i in range(30): c.execute('INSERT INTO t(v) VALUES (?)', ('after restart %d ' % i + 'y' * 280,))\nc.close()`);
    await store.close();
    const sqliteHeader = readAt(`${file}-wal`, 0, 32);
    expect(sidecarGroups(file).every((g) => g.salts[1] === baseHeader.readUInt32BE(20))).toBe(true); // only the old generation
    const ref = path.join(dir, 'frame1-sqlite-restart-ref.db');
    copyDb(file, ref);
    const want = sqliteView(ref);
    removeDb(ref);
    expect(want).toMatchObject({ integrity: 'ok', rows: expected.rows + 30 });
    flipBit(`${file}-wal`, 17, 6); // salt-1
    expect((await verify(file, 1)).issues).toContainEqual(expect.objectContaining({ kind: 'wal-header-repairable' }));
    const r = await recoverWithRepair(file);
    expect(r).toMatchObject({ fallback: null, restoredHeader: { from: 'frame-1', salts: [sqliteHeader.readUInt32BE(16), sqliteHeader.readUInt32BE(20)] } });
    expect(readAt(`${file}-wal`, 0, 32).equals(sqliteHeader)).toBe(true);
    expect(sqliteView(file)).toEqual(want);
    removeDb(file);
  });

  it('with the sidecar gone, recover --repair restores the header from frame 1 (17,000+ frames come back)', async () => {
    const file = path.join(dir, 'frame1-no-sidecar.db');
    copyDb(base, file);
    fs.rmSync(`${file}-wal-fec`);
    flipBit(`${file}-wal`, 27, 0); // checksum-1
    expect((await verify(file, 1)).issues).toContainEqual(expect.objectContaining({ kind: 'wal-header-repairable', message: expect.stringContaining('frame 1') }));
    const r = await recoverWithRepair(file);
    expect(r).toMatchObject({ fallback: null, restoredHeader: { was: 'bad-checksum', from: 'frame-1' } });
    expect(r.walFrames).toBeGreaterThanOrEqual(FRAMES);
    expect(readAt(`${file}-wal`, 0, 32).equals(baseHeader)).toBe(true);
    expect(sqliteView(file)).toEqual(expected);
    removeDb(file);
  });
});

describe('random damage to the header (seeded, 60 rounds on a small WAL)', () => {
  it('is restored to exactly the original when it touches at most 2 of the 8 words, and left exactly as it is otherwise: never another header', async () => {
    const small = path.join(dir, 'small.db');
    python(small, `c.execute('PRAGMA page_size=${PS}'); c.execute('PRAGMA journal_mode=WAL'); c.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)'); c.close()`);
    const db = await openDatabase(small, { fec: FEC, autoCheckpoint: false, keepWal: true, readConnections: 0 });
    for (let i = 1; i <= 20; i++) await db.run('INSERT INTO t(v) VALUES (?)', [pad(i)]);
    await db.close();
    const good = readAt(`${small}-wal`, 0, 32);
    let x = 12345;
    const rnd = (n: number) => ((x = (x * 1103515245 + 12345) % 2147483648) >>> 12) % n; // (the high bits: the low ones of this generator cycle short)
    const seen = { restored: 0, refused: 0 };
    for (let round = 0; round < 60; round++) {
      const file = path.join(dir, `random${round}.db`);
      copyDb(small, file);
      const header = Buffer.from(good);
      const bytes = 1 + rnd(round % 3 === 0 ? 32 : 6); // mostly a few bytes, every third round up to all 32
      for (let i = 0; i < bytes; i++) header[rnd(32)]! ^= 1 + rnd(255);
      writeAt(`${file}-wal`, 0, header);
      const status = decodeWalHeader(header).status;
      if (status === 'ok') continue; // (every byte flipped back: not damage)
      const words = Array.from({ length: 8 }, (_, w) => header.subarray(4 * w, 4 * w + 4).equals(good.subarray(4 * w, 4 * w + 4)) ? 0 : 1).reduce((a: number, b) => a + b, 0);
      const r = await recoverWithRepair(file);
      const after = readAt(`${file}-wal`, 0, 32);
      if (words <= 2) {
        expect(r.restoredHeader).not.toBeNull();
        expect(after.equals(good)).toBe(true);
        seen.restored++;
      } else {
        expect(r).toMatchObject({ restoredHeader: null, walFrames: 0, fallback: { frame: 0, reason: 'header-mismatch' } });
        expect(after.equals(header)).toBe(true);
        seen.refused++;
      }
      removeDb(file);
    }
    expect(seen.restored + seen.refused).toBeGreaterThan(50);
    expect(seen.restored).toBeGreaterThan(10);
    expect(seen.refused).toBeGreaterThan(5);
    removeDb(small);
  }, 120_000);
});
