// Point-in-time restore restores that point (issue #18 part 1). Follow-mode exports of databases
// that sqlite3 processes and walnut write, over several WAL generations with checkpoints
// between, started while the WAL still holds commits a partial checkpoint did not copy; then a
// restore at every commit boundary (by sequence and by the exporter's times) and at random cut
// offsets, each checked against the rows the writer saw at that commit and by SQLite's
// integrity_check. The CLI runs the reproductions. WALNUT_BACKUP_LONG=1 (npm run
// test:backup-long) runs the same with more commits, generations and cuts.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { Xxh3Stream } from '../../lib/checksum';
import { open, type Store } from '../../lib/commit/store';
import { hashBytes } from '../../lib/export/exporter';
import { StreamMagic, WalStreamReader, type WalRecordSink } from '../../lib/export/framing';
import { decodeRecord, encodeCommitMetaRecord, encodeFramesRecord, encodeWalHeaderRecord, KIND } from '../../lib/export/records';
import { restore } from '../../lib/export/restore';
import { createExportStream } from '../../lib/export/stream';
import { spawnOutput, SqlitePeer } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { seededRandom } from '../helpers/wal-damage.js';

/** A record's u64 big-endian length prefix (ARKHEXP1 framing). */
function lengthPrefix(length: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(length));
  return b;
}

const LONG = process.env['WALNUT_BACKUP_LONG'] === '1';
const COMMITS_PER_GENERATION = LONG ? 25 : 6;
const GENERATIONS = LONG ? 8 : 3;
const CUTS = LONG ? 400 : 40;
const dir = tmpDir('walnut-pitr-');
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
let n = 0;

type Rows = string; // the table's rows, JSON, in id order

/** A record sink that keeps the framed stream in memory and counts the commits exported. */
class MemorySink implements WalRecordSink {
  readonly #parts: Uint8Array[] = [StreamMagic.V1.bytes()];
  commits = 0;
  async appendRecord(payload: Uint8Array): Promise<void> {
    this.#parts.push(lengthPrefix(payload.length), payload.slice());
    if (payload[0] === KIND.COMMIT_META) this.commits++;
  }
  async flush(): Promise<void> {}
  bytes(): Buffer {
    return Buffer.concat(this.#parts);
  }
}

/** Waits (bounded) until `done()`; the caller's assertions say what it needed. */
async function until(done: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
}

/** A WAL-mode database with tables t (the data) and meta (the writer's commit number k), WAL empty. */
function newDatabase(): string {
  const p = path.join(dir, `src${n++}.db`);
  const db = new Database(p);
  db.pragma('auto_vacuum = INCREMENTAL'); // deletes can shrink the file within their commit
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE meta(k INTEGER); INSERT INTO meta VALUES (0)');
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return p;
}

/** The SQL of the writer's commit k: inserts (one of them large), updates, deletes that shrink the file. */
function commitSql(k: number): string {
  const body = [`UPDATE meta SET k = ${k}`];
  if (k % 11 === 7) body.push(`DELETE FROM t WHERE id % 3 <> ${k % 3}`, 'PRAGMA incremental_vacuum');
  else if (k % 7 === 3) body.push(`UPDATE t SET v = v || '${k}' WHERE id % 4 = ${k % 4}`);
  else body.push(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${k % 5 === 0 ? 60 : 3}) INSERT INTO t(v) SELECT printf('%d-%d %s', ${k}, i, hex(zeroblob(${20 + ((k * 37) % 400)}))) FROM s`);
  return `BEGIN; ${body.join('; ')}; COMMIT`;
}

interface Written {
  stream: Buffer;
  /** rows after the writer's commit k */
  expected: Map<number, Rows>;
  /** wall time just before the writer began commit k */
  before: Map<number, number>;
  generations: number;
}

/** The writer's commits 1, 2, ...: the rows after each, and when each began. */
class Writer {
  k = 0;
  readonly expected = new Map<number, Rows>([[0, JSON.stringify([])]]);
  readonly before = new Map<number, number>();
  constructor(readonly run: (sql: string) => Promise<Rows>) {}
  async commit(): Promise<void> {
    const k = ++this.k;
    this.before.set(k, Date.now());
    this.expected.set(k, await this.run(commitSql(k)));
  }
}

const SELECT_ROWS = 'SELECT id, v FROM t ORDER BY id';

/** sqlite3 writes (another process, autocheckpoint off); walnut only exports. */
async function sqliteWritten(): Promise<Written> {
  const src = newDatabase();
  const writer = new SqlitePeer(src);
  const reader = new SqlitePeer(src);
  await writer.pragma('wal_autocheckpoint = 0');
  const w = new Writer(async (sql) => {
    await writer.exec(sql);
    return JSON.stringify(await writer.all(SELECT_ROWS));
  });
  // before the export: 3 commits, a reader holding commit 3 while 2 more land, a checkpoint
  // that can only copy up to commit 3 (pages changed again later stay old in the file)
  for (let i = 0; i < 3; i++) await w.commit();
  await reader.exec('BEGIN');
  await reader.get('SELECT count(*) FROM t');
  for (let i = 0; i < 2; i++) await w.commit();
  await writer.pragma('wal_checkpoint(PASSIVE)');
  await reader.exec('COMMIT');
  await reader.close();

  const store = await open(src); // the exporter's connection
  const sink = new MemorySink();
  const handle = store.exportTo(sink, { follow: true, pollMs: 2 });
  const shm = `${src}-shm`;
  const walMxFrame = () => fs.readFileSync(shm).readUInt32LE(16);
  for (let g = 0; g < GENERATIONS; g++) {
    for (let i = 0; i < COMMITS_PER_GENERATION; i++) await w.commit();
    // let the exporter catch up, checkpoint everything, and wait for the exporter's WAL restart
    await until(() => sink.commits >= w.k - 3);
    await writer.pragma('wal_checkpoint(PASSIVE)');
    await until(() => walMxFrame() === 0);
  }
  for (let i = 0; i < 3; i++) await w.commit();
  const stats = await handle.stop();
  await writer.close();
  await store.close();
  return { stream: sink.bytes(), expected: w.expected, before: w.before, generations: stats.generations };
}

/**
 * walnut writes: each commit is SQLite's work on a copy of the store's newest state (so every
 * state is a real SQLite database), the changed pages committed through walnut.
 */
async function walnutWritten(): Promise<Written> {
  const src = newDatabase();
  const store = await open(src);
  const scratch = path.join(dir, `scratch${n++}.db`);
  const w = new Writer((sql) => walnutCommit(store, scratch, sql));
  for (let i = 0; i < 3; i++) await w.commit();
  const held = await store.snapshot(); // a reader at commit 3: the checkpoint copies up to it only
  for (let i = 0; i < 2; i++) await w.commit();
  await store.checkpoint('passive');
  held.release();

  const sink = new MemorySink();
  const handle = store.exportTo(sink, { follow: true, pollMs: 2 });
  for (let g = 0; g < GENERATIONS; g++) {
    for (let i = 0; i < COMMITS_PER_GENERATION; i++) await w.commit();
    await until(() => sink.commits >= w.k - 3); // caught up: the next commit after a full checkpoint restarts the WAL
    await store.checkpoint('passive');
  }
  for (let i = 0; i < 3; i++) await w.commit();
  const stats = await handle.stop();
  await store.close();
  return { stream: sink.bytes(), expected: w.expected, before: w.before, generations: stats.generations };
}

async function walnutCommit(store: Store, scratch: string, sql: string): Promise<Rows> {
  const snap = await store.snapshot();
  const old: Buffer[] = [];
  for (let p = 1; p <= snap.dbSize; p++) old.push(snap.readSync(p));
  snap.release();
  fs.writeFileSync(scratch, Buffer.concat(old));
  const s = new Database(scratch);
  s.pragma('journal_mode = DELETE');
  s.exec(sql);
  const rows = JSON.stringify(s.prepare(SELECT_ROWS).all());
  s.close();
  const image = fs.readFileSync(scratch);
  image[18] = 2; // WAL mode in the header, as in the source
  image[19] = 2;
  const pageSize = old[0]!.length;
  const pages = [];
  for (let p = 0; p < image.length / pageSize; p++) {
    const data = image.subarray(p * pageSize, (p + 1) * pageSize);
    if (!old[p]?.equals(data)) pages.push({ pgno: p + 1, data });
  }
  if (pages.length === 0) pages.push({ pgno: 1, data: image.subarray(0, pageSize) });
  await store.commit(pages, { dbSize: image.length / pageSize });
  return rows;
}

interface Point {
  seq: number;
  timeMs: number;
  /** stream offset just past the record that completes this state (BASE_END, COMMIT_META) */
  end: number;
}

/** The stream's own account of its states: the base, then each commit. */
function pointsOf(stream: Buffer): Point[] {
  const points: Point[] = [];
  let at = 8;
  let base: { seq: number; timeMs: number } | null = null;
  for (const payload of WalStreamReader.fromBuffer(stream)) {
    at += 8 + payload.length;
    const r = decodeRecord(payload);
    if (r.kind === 'baseMeta') base = { seq: Number(r.seq), timeMs: Number(r.timeMs) };
    if (r.kind === 'baseEnd') points.push({ ...base!, end: at });
    if (r.kind === 'commitMeta') points.push({ seq: Number(r.seq), timeMs: Number(r.timeMs), end: at });
  }
  return points;
}

/** The restored database: SQLite's integrity check, the writer's k, the rows. */
function readBack(file: string): { integrity: unknown; k: number; rows: Rows } {
  const db = new Database(file, { readonly: true });
  try {
    return {
      integrity: db.pragma('integrity_check', { simple: true }),
      k: (db.prepare('SELECT k FROM meta').get() as { k: number }).k,
      rows: JSON.stringify(db.prepare(SELECT_ROWS).all()),
    };
  } finally {
    db.close();
  }
}

/** Every check of a stream: every commit boundary by sequence and by time, random cuts. */
async function checkEveryPoint(w: Written, name: string): Promise<void> {
  const points = pointsOf(w.stream);
  const base = points[0]!;
  const last = points[points.length - 1]!;
  // the stream numbers consecutively from its base; its times never go back
  points.forEach((p, i) => expect(p.seq).toBe(base.seq + i));
  for (let i = 1; i < points.length; i++) expect(points[i]!.timeMs).toBeGreaterThanOrEqual(points[i - 1]!.timeMs);
  // the base is the writer's commit baseK; stream commit s is the writer's commit baseK + (s - base.seq)
  const target = path.join(dir, `${name}.db`);
  await restore(w.stream, target, { until: base.seq, force: true });
  const baseK = readBack(target).k;
  const kOf = (seq: number) => baseK + (seq - base.seq);
  expect(kOf(last.seq)).toBe(w.expected.size - 1); // every commit of the writer is in the stream
  for (const p of points) {
    // a commit's time is when the exporter saw it: never before the writer began it
    if (p.seq > base.seq) expect(p.timeMs).toBeGreaterThanOrEqual(w.before.get(kOf(p.seq))!);
  }

  // every commit boundary, by sequence
  for (let seq = 0; seq <= last.seq + 1; seq++) {
    if (seq < base.seq) {
      const e = await expectRejectsWalnut(restore(w.stream, target, { until: seq, force: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'BeforeEarliest' });
      expect(e.message).toContain(`commit ${base.seq}`);
      continue;
    }
    const r = await restore(w.stream, target, { until: seq, force: true });
    const want = Math.min(seq, last.seq);
    expect(r.lastCommitSeq).toBe(want);
    expect(r.commits).toBe(want - base.seq);
    const got = readBack(target);
    expect(got.integrity).toBe('ok');
    expect(got.k).toBe(kOf(want));
    expect(got.rows).toBe(w.expected.get(kOf(want)));
  }

  // every distinct time the stream names, and just before its first
  const times = [...new Set(points.map((p) => p.timeMs))];
  for (const t of times) {
    const r = await restore(w.stream, target, { until: new Date(t), force: true });
    const want = points.filter((p) => p.timeMs <= t).pop()!;
    expect(r.lastCommitSeq).toBe(want.seq);
    expect(r.lastCommitTime).toBe(new Date(want.timeMs).toISOString());
    expect(readBack(target).rows).toBe(w.expected.get(kOf(want.seq)));
  }
  const early = await expectRejectsWalnut(restore(w.stream, target, { until: new Date(base.timeMs - 1), force: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'BeforeEarliest' });
  expect(early).toMatchObject({ earliestSeq: base.seq, earliestTime: new Date(base.timeMs).toISOString() });

  // random cuts: exactly the last complete commit, or no database at all before the base is whole
  const rand = seededRandom(18 + name.length);
  for (let i = 0; i < CUTS; i++) {
    const cut = i === 0 ? base.end - 1 : i === 1 ? base.end : 8 + rand(w.stream.length - 8);
    const prefix = w.stream.subarray(0, cut);
    fs.rmSync(target, { force: true });
    if (cut < base.end) {
      await expectRejectsWalnut(restore(prefix, target), 'WALNUT_INVALID_FRAMING', { reason: 'Truncated' });
      expect(fs.existsSync(target)).toBe(false);
      continue;
    }
    const want = points.filter((p) => p.end <= cut).pop()!;
    const r = await restore(prefix, target);
    expect(r.lastCommitSeq).toBe(want.seq);
    expect(r.stoppedBy).toBe(cut === want.end ? null : 'Truncated');
    const got = readBack(target);
    expect(got.integrity).toBe('ok');
    expect(got.rows).toBe(w.expected.get(kOf(want.seq)));
  }
}

describe('point-in-time restore restores that point', () => {
  it.each([
    ['sqlite3', sqliteWritten],
    ['walnut', walnutWritten],
  ])('%s writers: several generations, checkpoints between, history from before the export', async (name, written) => {
    const w = await written();
    expect(w.generations).toBeGreaterThanOrEqual(GENERATIONS);
    // the base is commit 3, where the partial checkpoint stopped; commits 4 and 5 follow it
    expect(pointsOf(w.stream)[0]!.seq).toBe(3);
    await checkEveryPoint(w, name);
  }, LONG ? 900_000 : undefined);
});

// (awaited processes, not spawnSync: a test's run of them held the vitest worker's event loop past its RPC timeout under load; see spawnOutput)
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);
const sqlite3 = async (db: string, sql: string) => {
  const r = await spawnOutput('sqlite3', [db], { input: sql });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim();
};
const state = async (db: string) => (await sqlite3(db, 'SELECT v FROM a; SELECT count(*) FROM b; PRAGMA integrity_check;')).split('\n');
const COMMIT_1 = "UPDATE a SET v = 'a-new';";
const COMMIT_2 = "BEGIN; WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 300) INSERT INTO b SELECT printf('row %d %s', i, hex(randomblob(40))) FROM c; COMMIT;";

/** The app.db: a (a-old) and b (empty) checkpointed; `then` runs after (sqlite3 commits). */
async function appDb(then = ''): Promise<string> {
  const db = path.join(dir, `app${n++}.db`);
  await sqlite3(db, "PRAGMA journal_mode = WAL; CREATE TABLE a(v TEXT); INSERT INTO a VALUES ('a-old'); CREATE TABLE b(v TEXT);");
  if (then) await sqlite3(db, then);
  return db;
}

/** With sqlite3 commits (1) UPDATE a, (2) 300 inserts into b left in the WAL (no checkpoint on close). */
const appDbWithWal = () => appDb(`.dbconfig no_ckpt_on_close on\n${COMMIT_1}\n${COMMIT_2}`);

/** Offsets of the stream's records: [start, end) of each, with its kind. */
function recordsOf(file: string): { kind: number; start: number; end: number }[] {
  const out = [];
  let at = 8;
  for (const payload of WalStreamReader.fromBuffer(fs.readFileSync(file))) {
    out.push({ kind: payload[0]!, start: at, end: at + 8 + payload.length });
    at += 8 + payload.length;
  }
  return out;
}

describe('the issue\'s reproductions through the walnut command', () => {
  it('exported with sqlite3 gone (the WAL recovered): --until 1 and a time before the export are refused naming the earliest point, commit 2; a cut stream gives no database', async () => {
    const db = await appDbWithWal();
    const ark = `${db}.ark`;
    expect((await walnut('export', db, '-o', ark)).status).toBe(0);
    const r = path.join(dir, `r${n++}.db`);
    const one = await walnut('restore', ark, r, '--until', '1');
    expect(one.status).toBe(2); // before: 0, with the state after commit 2
    expect(one.stderr).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: the point to restore \(commit 1\) is before the stream's earliest point: commit 2, which the exporter saw at \d{4}-/);
    const old = await walnut('restore', ark, r, '--until', '2020-01-01T00:00:00Z');
    expect(old.status).toBe(2); // before: 0, the latest state with commits 0
    expect(old.stderr).toMatch(/\(2020-01-01T00:00:00.000Z\) is before the stream's earliest point: commit 2/);
    expect(fs.existsSync(r)).toBe(false);
    const whole = await walnut('restore', ark, r, '--json');
    expect(JSON.parse(whole.stdout)).toMatchObject({ commits: 0, lastCommitSeq: 2, stoppedBy: null });
    expect(await state(r)).toEqual(['a-new', '300', 'ok']);
    // the stream is its base image: cut inside it, there is no state to restore
    const base = recordsOf(ark).find((x) => x.kind === KIND.BASE_PAGES)!;
    const cut = `${ark}.cut`;
    fs.writeFileSync(cut, fs.readFileSync(ark).subarray(0, base.start + 100));
    const cr = path.join(dir, `r${n++}.db`);
    const torn = await walnut('restore', cut, cr);
    expect(torn.status).toBe(2);
    expect(torn.stderr).toMatch(/^walnut: WALNUT_INVALID_FRAMING: Truncated/);
    expect(fs.existsSync(cr)).toBe(false);
  });

  it('exported while sqlite3 is connected: --until 1 is the state after commit 1; a stream cut inside commit 2 restores commit 1; 2020 is refused naming commit 0', async () => {
    const db = await appDb();
    const live = spawn('sqlite3', [db], { stdio: ['pipe', 'pipe', 'inherit'] });
    const said = (marker: string) => new Promise<void>((resolve) => {
      let out = '';
      live.stdout!.on('data', (d) => {
        out += d;
        if (out.includes(marker)) resolve();
      });
    });
    const ready = said('ready');
    live.stdin!.write(`${COMMIT_1}\n${COMMIT_2}\nSELECT 'ready';\n`);
    await ready;
    try {
      const ark = `${db}.ark`;
      expect((await walnut('export', db, '-o', ark)).status).toBe(0);
      const restored = async (until: string[], file = ark) => {
        const r = path.join(dir, `r${n++}.db`);
        const out = await walnut('restore', file, r, '--json', ...until);
        expect(out.status, out.stderr).toBe(0);
        return { result: JSON.parse(out.stdout), state: await state(r) };
      };
      expect(await restored(['--until', '0'])).toMatchObject({ result: { lastCommitSeq: 0, stoppedBy: 'until' }, state: ['a-old', '0', 'ok'] });
      expect(await restored(['--until', '1'])).toMatchObject({ result: { commits: 1, lastCommitSeq: 1, stoppedBy: 'until' }, state: ['a-new', '0', 'ok'] }); // before: a-new, 300 rows
      expect(await restored([])).toMatchObject({ result: { commits: 2, lastCommitSeq: 2, stoppedBy: null }, state: ['a-new', '300', 'ok'] });
      // cut in the middle of commit 2's frames (before: exit 0 into a malformed database)
      const records = recordsOf(ark);
      const metas = records.filter((x) => x.kind === KIND.COMMIT_META);
      expect(metas).toHaveLength(2);
      const cut = `${ark}.cut`;
      fs.writeFileSync(cut, fs.readFileSync(ark).subarray(0, Math.floor((metas[0]!.end + metas[1]!.start) / 2)));
      expect(await restored([], cut)).toMatchObject({ result: { commits: 1, lastCommitSeq: 1, stoppedBy: 'Truncated' }, state: ['a-new', '0', 'ok'] });
      const old = await walnut('restore', ark, path.join(dir, `r${n++}.db`), '--until', '2020-01-01T00:00:00Z');
      expect(old.status).toBe(2);
      expect(old.stderr).toMatch(/is before the stream's earliest point: commit 0, which the exporter saw at/);
    } finally {
      live.stdin!.end();
      await new Promise((r) => live.once('exit', r));
    }
  });
});

describe('streams of the first layout (no BASE_META)', () => {
  it('restore whole only: with until, or cut, they are refused (their commits replay over a later base)', async () => {
    // what walnut wrote before BASE_META: the newest state as the base, then the WAL from frame 1
    const db = await appDbWithWal();
    const wal = fs.readFileSync(`${db}-wal`); // before the export: as the last connection it checkpoints and removes the WAL
    const chunks: Buffer[] = [];
    for await (const c of createExportStream(db)) chunks.push(c as Buffer);
    const records = [...WalStreamReader.fromBuffer(Buffer.concat(chunks))].filter((p) => p[0] === KIND.BASE_PAGES || p[0] === KIND.BASE_END);
    records.push(encodeWalHeaderRecord(wal.subarray(0, 32)));
    const frameSize = 24 + wal.readUInt32BE(8);
    let txn: Buffer[] = [];
    for (let at = 32; at + frameSize <= wal.length; at += frameSize) {
      const frame = wal.subarray(at, at + frameSize);
      txn.push(frame);
      if (frame.readUInt32BE(4) === 0) continue;
      const hash = new Xxh3Stream();
      for (const f of txn) hash.update(f);
      records.push(encodeFramesRecord(txn), encodeCommitMetaRecord(BigInt(records.filter((p) => p[0] === KIND.COMMIT_META).length + 1), BigInt(Date.now()), hashBytes(hash)));
      txn = [];
    }
    const legacy = Buffer.concat([StreamMagic.V1.bytes(), ...records.flatMap((p) => [lengthPrefix(p.length), p])]);
    const target = path.join(dir, `legacy${n++}.db`);
    expect(await restore(legacy, target)).toMatchObject({ commits: 2, lastCommitSeq: 2, stoppedBy: null });
    expect(await state(target)).toEqual(['a-new', '300', 'ok']);
    // before: until 1 gave the state after commit 2, and a cut gave a malformed database
    await expectRejectsWalnut(restore(legacy, target, { until: 1, force: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'FirstLayoutStream' });
    const lastFrames = legacy.length - (8 + 33) - (8 + records[records.length - 2]!.length); // the last FRAMES record starts here
    await expectRejectsWalnut(restore(legacy.subarray(0, lastFrames + 5000), target, { force: true }), 'WALNUT_INVALID_FRAMING', { reason: 'Truncated' });
    expect(await state(target)).toEqual(['a-new', '300', 'ok']); // the earlier restore, untouched
  });
});
