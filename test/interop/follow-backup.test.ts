// Continuous backup beside live sqlite3 writers (issue #18 part 2): a follow-mode export must
// not keep their WAL from restarting, and its stream must restore to the source, row for row.
// Three python3/sqlite3 processes insert one row (4-8 KB) per transaction (wal_autocheckpoint
// 200); the -wal's size is sampled while they run, once without and once with an export following.
// FOLLOW_BACKUP_SECONDS sets each run's length (npm run test:backup-long: 10 s).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { BufferedWalSink, type WalRecordSink } from '../../lib/export/framing';
import { KIND } from '../../lib/export/records';
import { restore } from '../../lib/export/restore';
import { SHM_LOCK } from '../../lib/format/shm-header';
import { WalnutFile } from '../../lib/io/file';
import { HELPERS, holdLock, release, runPython, SqlitePeer, sqliteWriters } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { commitsInStreamFile, newWriterDb, snapshotTaken } from '../helpers/export-stream';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { firstDifference, writerRows as rows } from '../helpers/writer-rows';
import { until, WAIT_MS } from '../helpers/until';

const SECONDS = Number(process.env.FOLLOW_BACKUP_SECONDS || 3);
const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');

const newDb = (name: string, pageSize = 4096): string => newWriterDb(dir, name, pageSize);

/** Runs the writers on `db` while sampling the -wal's size; returns the largest size seen and the commits made. */
async function writeAndSample(db: string): Promise<{ peak: number; commits: number }> {
  let peak = 0;
  const sample = () => (peak = Math.max(peak, fs.statSync(`${db}-wal`, { throwIfNoEntry: false })?.size ?? 0));
  const timer = setInterval(sample, 5);
  try {
    const commits = await sqliteWriters(db, 3, SECONDS, 200);
    sample();
    return { peak, commits };
  } finally {
    clearInterval(timer);
  }
}

describe('follow-mode export beside sqlite3 writers', () => {
  it(`keeps their WAL within 8x of what SQLite alone keeps (and under 16 MiB); the stream restores to the source (${SECONDS} s of writes)`, async () => {
    const alone = await writeAndSample(newDb('alone'));

    const src = newDb('followed');
    const store = await open(src);
    const ark = path.join(dir, 'followed.ark');
    const sink = await WalnutFile.open(ark, { create: true, truncate: true });
    const handle = store.exportTo(sink, { follow: true, pollMs: 5 });
    await snapshotTaken(ark);
    const followed = await writeAndSample(src);
    const stats = await handle.stop();
    await sink.close();
    await store.close();
    const note = `WAL peak: SQLite alone ${alone.peak} bytes (${alone.commits} commits), with the export ${followed.peak} bytes (${followed.commits} commits)`;
    console.log(note);

    // 8x: the two runs are sequential and load moves them apart (quiet: 1.0-3.2x; at load 4-6 in
    // the full suite one run reached 4.8x, the export's polls delayed); a follower that kept the
    // WAL from restarting grows it by every commit: 10+ MB in 3 s even with few commits
    expect(followed.peak, note).toBeLessThan(8 * alone.peak);
    expect(followed.peak, note).toBeLessThan(16 << 20);
    expect(stats.commits).toBe(followed.commits); // the CREATE TABLE is in the base image
    const restored = path.join(dir, 'restored.db');
    const r = await restore(fs.createReadStream(ark), restored);
    expect(r).toMatchObject({ commits: stats.commits, stoppedBy: null });
    const expected = rows(src);
    expect(expected).toHaveLength(followed.commits);
    expect(firstDifference(rows(restored), expected)).toBeNull();
    const check = new Database(restored, { readonly: true });
    expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
    check.close();
  });
});

describe('follow-mode export with a sink slower than the sqlite3 writers it follows', () => {
  it(`restarts their WAL while it lags (not only once a pass has caught up); every commit, the restore equals the source (${SECONDS} s of writes)`, async () => {
    const src = newDb('lagging');
    const store = await open(src);
    const ark = path.join(dir, 'lagging.ark');
    const file = await WalnutFile.open(ark, { create: true, truncate: true });
    const inner = new BufferedWalSink(file);
    let slow = true;
    // 2 ms a record (two a commit): slower than three writers commit, so no pass ever finds
    // nothing newer while they write (the old code tried its restart only then: 1 generation,
    // 9 MiB in 4 s). But never more than LAG_COMMITS behind (~25 MB of frames): a sink slower
    // than the writers for good passes the 64 MiB of frames a restart may hand the export in
    // memory, and from there the export holds the WAL until it catches up (README): on a fast
    // disk (7,400 commits in 3 s) that was 2 s in, and the WAL grew to 40 MB.
    const LAG_COMMITS = 2000;
    const peek = new Database(src, { readonly: true });
    const maxId = peek.prepare('SELECT coalesce(max(id), 0) AS n FROM t');
    let written = 0;
    let exported = 0;
    const count = setInterval(() => (written = (maxId.get() as { n: number }).n), 10);
    const sink: WalRecordSink = {
      appendRecord: async (p) => {
        if (p[0] === KIND.COMMIT_META) exported++;
        if (slow && written - exported < LAG_COMMITS) await new Promise((r) => setTimeout(r, 2));
        return inner.appendRecord(p);
      },
      flush: () => inner.flush(),
    };
    const handle = store.exportTo(sink, { follow: true, pollMs: 5 });
    let followed: { peak: number; commits: number };
    try {
      await snapshotTaken(ark);
      followed = await writeAndSample(src);
    } finally {
      clearInterval(count);
      peek.close();
    }
    slow = false;
    const stats = await handle.stop();
    await file.close();
    await store.close();
    const note = `${followed.commits} commits, WAL peak ${followed.peak} bytes, ${stats.generations} generations`;
    console.log(note);
    expect(stats.generations, note).toBeGreaterThan(1);
    expect(followed.peak, note).toBeLessThan(16 << 20);
    expect(stats.commits, note).toBe(followed.commits);
    const restored = path.join(dir, 'lagging-restored.db');
    expect(await restore(fs.createReadStream(ark), restored)).toMatchObject({ commits: stats.commits, stoppedBy: null });
    expect(firstDifference(rows(restored), rows(src))).toBeNull();
  });
});

describe('follow-mode export beside sqlite3 writers that run RESTART and TRUNCATE checkpoints themselves', () => {
  it(`every commit is in the stream and the restore equals the source; the WAL stays bounded (${SECONDS} s of writes)`, async () => {
    const src = newDb('self-checkpointing');
    const store = await open(src);
    const ark = path.join(dir, 'self-checkpointing.ark');
    const sink = await WalnutFile.open(ark, { create: true, truncate: true });
    const handle = store.exportTo(sink, { follow: true, pollMs: 5 });
    await snapshotTaken(ark);
    let peak = 0;
    const timer = setInterval(() => (peak = Math.max(peak, fs.statSync(`${src}-wal`, { throwIfNoEntry: false })?.size ?? 0)), 5);
    // two writers (autocheckpoint 200, a RESTART of their own every 25 commits, busy_timeout
    // 50 ms) and a third process alternating TRUNCATE and RESTART checkpoints (busy_timeout
    // 200 ms) 100 ms apart. The follower's read slot kept them from restarting the WAL (as any
    // reader's would: each waited out its busy timeout holding WRITE, the writers stalled with it,
    // with 5 s a 3 s run took 160 s); now its pin moves to READ(0) once it has read every frame
    // (WalIndex.settleFollowPin), and about as many end not busy as beside the writers alone
    // (6-8 of 12; alone 6). Either way no frame may be lost
    const writers = [1, 2].map((w) => runPython(path.join(HELPERS, 'sqlite-writer.py'), [src, String(SECONDS), String(w), '200', '25']));
    const checkpointer = runPython(path.join(HELPERS, 'sqlite-checkpointer.py'), [src, 'TRUNCATE,RESTART', String(Math.ceil(SECONDS * 2)), '100', '200']);
    const outs = await Promise.all(writers);
    const checkpoints = JSON.parse(await checkpointer) as { results: { mode: string; busy: number }[] };
    clearInterval(timer);
    const commits = outs.reduce((a, out) => a + Number(out.trim().split('\n')[0]), 0);
    const stats = await handle.stop();
    await sink.close();
    await store.close();
    const streamBytes = fs.statSync(ark).size;
    const note = `${commits} commits; WAL peak ${peak} bytes, the stream ${streamBytes}; ${checkpoints.results.length} checkpoints by the third process, ${checkpoints.results.filter((r) => r.busy === 0).length} not busy; ${stats.generations} generations`;
    console.log(note);
    expect(commits, note).toBeGreaterThan(0);
    expect(stats.commits, note).toBe(commits);
    // bounded: the WAL restarted during the run (the follower let it), so its file stayed well
    // below every frame the run wrote (the stream holds each once). A fixed 16 MiB was the
    // machine's speed: the writers' rate sets a generation's size (11.8-27.9 MB peaks in 10
    // runs of this build and of f162322 alike on a quiet machine)
    expect(stats.generations, note).toBeGreaterThan(2);
    expect(peak, note).toBeLessThan(streamBytes / 2);
    const restored = path.join(dir, 'self-checkpointing-restored.db');
    expect(await restore(fs.createReadStream(ark), restored)).toMatchObject({ commits, stoppedBy: null });
    const expected = rows(src);
    expect(expected).toHaveLength(commits);
    expect(firstDifference(rows(restored), expected)).toBeNull();
    const check = new Database(restored, { readonly: true });
    expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
    check.close();
  });
});

describe('walnut export --follow while another process grows the WAL past four wal-index segments', () => {
  it('16,000+ frames (512-byte pages) by python3 with no checkpoint, exported as they come: every commit, the restore equals the source', async () => {
    const src = newDb('segments', 512);
    const ark = path.join(dir, 'segments.ark');
    const exporter = spawn(process.execPath, [bin, 'export', src, '--follow', '-o', ark], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    exporter.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => exporter.once('exit', resolve));
    try {
      await until(() => fs.existsSync(ark) && fs.statSync(ark).size > 0); // the base image is out: the follow has begun
      // 3,000 transactions of 5 rows, ~6 frames each; no checkpoint, so one WAL generation of 16,000+ frames
      const script = [
        'import sqlite3, sys',
        "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)",
        "c.execute('PRAGMA wal_autocheckpoint=0'); c.execute('PRAGMA synchronous=OFF')",
        'for i in range(3000):',
        "    c.execute('BEGIN')",
        "    for j in range(5): c.execute('INSERT INTO t(w, v) VALUES (?, randomblob(300))', (i,))",
        "    c.execute('COMMIT')",
        'c.close()',
      ].join('\n');
      await new Promise<void>((resolve, reject) => spawn('python3', ['-c', script, src], { stdio: 'inherit' }).once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`python3 exited ${code}`)))));
      const frames = (fs.statSync(`${src}-wal`).size - 32) / (24 + 512);
      expect(frames).toBeGreaterThan(16_000);
      // caught up: the stream holds the writer's 3,000 commits (counted over the records written so far)
      const commitsInStream = () => commitsInStreamFile(ark);
      await until(() => commitsInStream() >= 3000, WAIT_MS, () => ({ commits: commitsInStream(), stderr }));
    } finally {
      exporter.kill('SIGINT');
    }
    expect(await exited, stderr).toBe(0);
    const restored = path.join(dir, 'segments-restored.db');
    expect(await restore(fs.createReadStream(ark), restored)).toMatchObject({ stoppedBy: null });
    const expected = rows(src);
    expect(expected).toHaveLength(15_000);
    expect(firstDifference(rows(restored), expected)).toBeNull();
    const check = new Database(restored, { readonly: true });
    expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
    check.close();
  });
});

/** A file sink whose next flush() or appendRecord() can be held until released. */
class GatedSink implements WalRecordSink {
  readonly #inner: BufferedWalSink;
  #gate: { on: 'append' | 'flush'; reached: () => void; release: Promise<void> } | null = null;

  constructor(file: WalnutFile) {
    this.#inner = new BufferedWalSink(file);
  }

  /** Holds the next call of that kind; resolves `reached` once one is held, which waits for `release()`. */
  hold(on: 'append' | 'flush'): { reached: Promise<void>; release: () => void } {
    let release = () => undefined as void;
    let reached = () => undefined as void;
    const held = new Promise<void>((resolve) => (reached = resolve));
    this.#gate = { on, reached: () => reached(), release: new Promise<void>((resolve) => (release = resolve)) };
    return { reached: held, release: () => release() };
  }

  async appendRecord(payload: Uint8Array): Promise<void> {
    await this.#pass('append');
    return this.#inner.appendRecord(payload);
  }

  async flush(): Promise<void> {
    await this.#pass('flush');
    return this.#inner.flush();
  }

  async #pass(kind: 'append' | 'flush'): Promise<void> {
    const g = this.#gate;
    if (g?.on !== kind) return;
    this.#gate = null;
    g.reached();
    await g.release;
  }
}

describe('stop() and close() while the follower restarts the WAL', () => {
  /**
   * The peer commits without checkpointing; another process holds WRITE while the peer
   * checkpoints (the restart is now due, and the follower waits for WRITE), then CKPT, then lets
   * WRITE go: the follower takes WRITE for its restart and waits there for CKPT. While it holds
   * WRITE, stop() or close() comes in.
   */
  async function followerHoldingWrite(name: string) {
    const { src, store, file, handle, peer, writeHolder } = await followerWaitingForWrite(name);
    const ckptHolder = await holdLock(`${src}-shm`, SHM_LOCK.CKPT, 1, 'exclusive');
    await release(writeHolder);
    const shm = await WalnutFile.open(`${src}-shm`);
    // (polled, with WAIT_MS for a hang: a 20 s deadline here was a speed check on a loaded machine)
    await until(() => shm.lockHolder(SHM_LOCK.WRITE, 1, 'exclusive') !== null, WAIT_MS, () => 'the follower restarts the WAL under WRITE');
    await shm.close();
    return { src, store, file, handle, peer, ckptHolder };
  }

  /** The restart is due, and another process holds WRITE (the store waits a minute for a lock). */
  async function followerWaitingForWrite(name: string) {
    const src = newDb(name);
    const store = await open(src, { busyTimeout: 60_000 });
    const file = await WalnutFile.open(path.join(dir, `${name}.ark`), { create: true, truncate: true });
    const handle = store.exportTo(file, { follow: true, pollMs: 2 });
    await snapshotTaken(path.join(dir, `${name}.ark`)); // the 20 commits below are log records, not base
    const peer = new SqlitePeer(src);
    await peer.pragma('wal_autocheckpoint = 0');
    for (let i = 0; i < 20; i++) await peer.exec(`INSERT INTO t(w, v) VALUES (0, randomblob(${100 + i}))`);
    const writeHolder = await holdLock(`${src}-shm`, SHM_LOCK.WRITE, 1, 'exclusive');
    await peer.all('PRAGMA wal_checkpoint(PASSIVE)');
    return { src, store, file, handle, peer, writeHolder };
  }

  it('stop() while the follower waits for WRITE held elsewhere: it stops waiting (not after the one-minute busy timeout)', async () => {
    const { src, store, file, handle, peer, writeHolder } = await followerWaitingForWrite('wait-race');
    await new Promise((r) => setTimeout(r, 50)); // the next passes (pollMs 2) find the restart due and wait for WRITE
    const stats = await handle.stop();
    expect(stats.commits).toBe(20);
    await release(writeHolder);
    await peer.close();
    await file.close();
    await store.close();
    const r = await restore(fs.createReadStream(path.join(dir, 'wait-race.ark')), path.join(dir, 'wait-race-restored.db'));
    expect(r).toMatchObject({ commits: 20, stoppedBy: null });
    expect(firstDifference(rows(path.join(dir, 'wait-race-restored.db')), rows(src))).toBeNull();
  });

  it('stop(): the restart gives up at once, the last pass runs; the stream restores to the source', async () => {
    const { src, store, file, handle, peer, ckptHolder } = await followerHoldingWrite('stop-race');
    const stats = await handle.stop();
    await release(ckptHolder);
    await peer.exec('INSERT INTO t(w, v) VALUES (2, zeroblob(10))'); // WRITE was released
    await peer.close();
    await file.close();
    await store.close();
    const restored = path.join(dir, 'stop-race-restored.db');
    const r = await restore(fs.createReadStream(path.join(dir, 'stop-race.ark')), restored);
    expect(r).toMatchObject({ commits: 20, stoppedBy: null });
    expect(stats.commits).toBe(20);
    expect(firstDifference(rows(restored), rows(src).slice(0, 20))).toBeNull();
  });

  it('close(): the export is cut with WALNUT_CLOSED, WRITE and the pin are let go, the database stays whole', async () => {
    const { store, file, handle, peer, ckptHolder } = await followerHoldingWrite('close-race');
    await store.close();
    await expectRejectsWalnut(handle.done, 'WALNUT_CLOSED');
    await release(ckptHolder);
    await peer.exec('INSERT INTO t(w, v) VALUES (2, zeroblob(10))'); // WRITE was released
    expect(await peer.all('PRAGMA wal_checkpoint(TRUNCATE)')).toEqual([{ busy: 0, log: 0, checkpointed: 0 }]); // no read lock left
    expect(await peer.pragma('integrity_check')).toBe('ok');
    expect((await peer.get<{ c: number }>('SELECT count(*) AS c FROM t')).c).toBe(21);
    await peer.close();
    await file.close();
    const restored = path.join(dir, 'close-race-restored.db');
    const r = await restore(fs.createReadStream(path.join(dir, 'close-race.ark')), restored);
    expect(r.commits).toBe(20); // flushed before the restart began
    const check = new Database(restored, { readonly: true });
    expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
    check.close();
  });
});

describe("follow-mode export beside this store's own committers", () => {
  it('a follower held up by its sink does not pin the WAL: each restart hands it the frames it lacks, and the stream restores page for page', async () => {
    const src = newDb('own');
    const store = await open(src, { autoCheckpoint: 50 });
    const file = await WalnutFile.open(path.join(dir, 'own.ark'), { create: true, truncate: true });
    const sink = new GatedSink(file);
    const handle = store.exportTo(sink, { follow: true, pollMs: 1 });
    const page = (pgno: number, i: number) => Buffer.alloc(4096, (pgno * 31 + i) & 0xff);
    const commitRound = (i: number) => Promise.all(Array.from({ length: 8 }, (_, w) => store.commit([{ pgno: 3 + w, data: page(3 + w, i) }])));
    for (let i = 0; i < 10; i++) await commitRound(i);
    const held = sink.hold('append');
    await commitRound(10);
    await held.reached; // the follower is stuck in its sink with the frames it has read so far
    let walPeak = 0;
    for (let i = 11; i < 150; i++) {
      await commitRound(i);
      walPeak = Math.max(walPeak, fs.statSync(`${src}-wal`).size);
    }
    held.release();
    const stats = await handle.stop();
    expect(stats.generations).toBeGreaterThan(5); // the WAL restarted while the follower was held
    expect(walPeak).toBeLessThan(2 << 20); // 1,200 frames were written: 4.9 MiB had nothing restarted
    const snap = await store.snapshot();
    const expected = Array.from({ length: snap.dbSize }, (_, k) => snap.readSync(k + 1));
    snap.release();
    await file.close();
    await store.close();
    const restored = path.join(dir, 'own-restored.db');
    const r = await restore(fs.createReadStream(path.join(dir, 'own.ark')), restored);
    expect(r).toMatchObject({ commits: stats.commits, stoppedBy: null, dbPages: expected.length });
    const bytes = fs.readFileSync(restored);
    for (let k = 0; k < expected.length; k++) expect(bytes.subarray(k * 4096, (k + 1) * 4096).equals(expected[k]!), `page ${k + 1}`).toBe(true);
  });

  it('beside 64 sustained committers of its own connection (5+ WAL restarts), exports while they commit and ends with every commit', async () => {
    const src = newDb('sustained');
    const store = await open(src, { busyTimeout: 60_000 });
    let exported = 0;
    let records = 0;
    const sink: WalRecordSink = {
      appendRecord: async (p) => {
        records++;
        if (p[0] === 0x05) exported++; // COMMIT_META: one per commit
      },
      flush: async () => undefined,
    };
    const handle = store.exportTo(sink, { follow: true });
    // the committers start once the export has its snapshot (its first record): commits made
    // before it, checkpointed, are in its base image, not counted as COMMIT_META (a delayed
    // snapshot made this 16,256 of 170,112)
    await until(() => records > 0, WAIT_MS, () => 'the export has not taken its snapshot');
    let stop = false;
    let commits = 0;
    const data = Buffer.alloc(4096, 7);
    const writers = Array.from({ length: 64 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        await store.commit([{ pgno: 3 + ((w * 7919 + i) % 5000), data }]);
        commits++;
      }
    });
    // 15,000 commits are ~11 auto-checkpoints and WAL restarts. A follower pass that found its
    // restart due (nBackfill > 0, no append since its last look) while the committer held WRITE
    // used to wait for WRITE, exporting nothing, until the committer went idle (0.8-2.8 s stalls
    // measured at 64 committers; up to the busy timeout): follow.ts now leaves that restart to
    // the own writer. Those stalls are timing; this test holds the outcome, not the stall.
    // (polled until the export has seen 15,000 commits, however long a loaded machine takes: a
    // 40 s deadline here was a speed check; WAIT_MS only ends a hang)
    try {
      await until(() => exported >= 15_000, WAIT_MS, () => ({ exported, commits }));
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    const stats = await handle.stop();
    await store.close();
    expect(exported, `the export saw ${exported} of ${commits} commits while they went on`).toBeGreaterThanOrEqual(15_000);
    // the restarts are what the follower must not hold up: 12 generations (11 restarts) measured
    // at load 15; a WAL that never restarted is 1
    expect(stats.generations, 'WAL generations the export followed').toBeGreaterThanOrEqual(6);
    expect(stats.commits).toBe(commits);
  });

  // The follower's WAL reads used to run on the background lane, FIFO behind the checkpoint's
  // copies and database syncs (1-3 ms a read beside 64 committers): it fell behind, the batch
  // that restarted the WAL waited under WRITE for the frames it lacked, and the checkpoint a batch
  // waits for queued behind its reads. They have a lane of their own now (the read lane). Shown by
  // order, not by time: a commit (another connection's: it pokes nothing), then a backlog of
  // synced writes queued on the background lane, then the poke; the commit must reach the stream
  // while that backlog still runs (on the old code the read completed after the whole backlog, FIFO).
  it("reads the WAL on a lane of its own: a commit reaches the stream while the background lane (the checkpoint's) is still busy", async () => {
    const src = newDb('read-lane');
    const store = await open(src, { autoCheckpoint: false });
    const other = await open(src, { autoCheckpoint: false, shareLane: false });
    let exported = 0;
    let backlogDone = false;
    const busyWhenExported: boolean[] = []; // per try: the backlog still ran when the other connection's commit reached the sink
    const sink: WalRecordSink = {
      appendRecord: async (p) => {
        if (p[0] !== KIND.COMMIT_META) return;
        if (++exported > 1) busyWhenExported.push(!backlogDone);
      },
      flush: async () => undefined,
    };
    const handle = store.exportTo(sink, { follow: true, pollMs: 600_000 });
    const data = Buffer.alloc(4096, 9);
    await store.commit([{ pgno: 2, data }]);
    await until(() => exported === 1); // past its base image and first pass: the follower reads the WAL now
    const busy = await WalnutFile.open(path.join(dir, 'read-lane.busy'), { create: true, truncate: true, lane: 'background' });
    const chunk = Buffer.alloc(1 << 20, 1);
    // Up to 3 tries: on a loaded machine this process's thread can be kept off the CPU for the
    // whole backlog (seconds), and the read lands after it although it never waited for it
    // (seen at load 7-15). FIFO behind the backlog, as on the old code, fails every try.
    for (let attempt = 0; attempt < 3 && !busyWhenExported.includes(true); attempt++) {
      await other.commit([{ pgno: 3 + attempt, data }]);
      backlogDone = false;
      const backlog = Promise.all(Array.from({ length: 200 }, (_, i) => busy.writev([chunk], (i % 8) << 20, 'data'))).finally(() => (backlogDone = true));
      handle.poke();
      await until(() => exported === attempt + 2);
      await backlog;
    }
    await busy.close();
    const stats = await handle.stop();
    await other.close();
    await store.close();
    expect(busyWhenExported.includes(true), `200 synced 1 MiB writes on the background lane ran before the follower read the commit, each try: ${busyWhenExported}`).toBe(true);
    expect(stats.commits).toBe(1 + busyWhenExported.length);
  });

  // A batch that waits for a checkpoint under WRITE restarts the WAL next, handing the follower
  // every frame it has not read, read for it while that batch (the slowest, where p99 falls)
  // waits. The store now tells its exports to read what they lack at once when such a wait
  // begins (Exporter.catchUp), and the follower reads on its own lane while the checkpoint
  // copies. Shown with frames the follower cannot have been told of otherwise (another
  // connection's commit: no poke; pollMs 10 minutes) and a checkpoint held behind a backlog on
  // the background lane: the other connection's commit is in the stream before the batch that
  // waited resolves (on the old code the follower slept until that batch's own poke).
  it("reads what it lacks while a batch waits for the checkpoint before a WAL restart (another connection's commit, no poke)", async () => {
    const src = newDb('catch-up');
    const store = await open(src, { autoCheckpoint: 100 });
    const other = await open(src, { autoCheckpoint: false, shareLane: false });
    let exported = 0;
    const sink: WalRecordSink = {
      appendRecord: async (p) => {
        if (p[0] === KIND.COMMIT_META) exported++;
      },
      flush: async () => undefined,
    };
    const handle = store.exportTo(sink, { follow: true, pollMs: 600_000 });
    const data = Buffer.alloc(4096, 5);
    await store.commit([{ pgno: 2, data }]);
    await until(() => exported === 1); // following now; the pass that exported it ends, then it sleeps
    await new Promise((r) => setTimeout(r, 200));
    const busy = await WalnutFile.open(path.join(dir, 'catch-up.busy'), { create: true, truncate: true, lane: 'background' });
    const chunk = Buffer.alloc(1 << 20, 1);
    // Up to 3 tries: on a loaded machine this process can be kept off the CPU until the backlog,
    // the checkpoint and the batch are through, the follower's read (done, on its lane) not yet
    // in the sink (seen at load 15). A follower that sleeps until the batch's poke, as on the old
    // code, fails every try: the restart then reads the other connection's frames for it under
    // WRITE (handedOverFrames), and the poke after the batch exports them from memory.
    const tries: { waited: number; handedOver: number; exportedBefore: number; exportedWhenResolved: number }[] = [];
    const caughtUp = (t: (typeof tries)[number]) => t.handedOver === 0 && t.exportedWhenResolved > t.exportedBefore;
    for (let attempt = 0; attempt < 3 && !tries.some(caughtUp); attempt++) {
      // 250 frames: past twice autoCheckpoint, so this store's next batch starts a checkpoint and waits for it
      await other.commit(Array.from({ length: 250 }, (_, k) => ({ pgno: 3 + k, data })));
      const backlog = Promise.all(Array.from({ length: 100 }, (_, i) => busy.writev([chunk], (i % 8) << 20, 'data')));
      const before = store.metrics();
      const exportedBefore = exported;
      let exportedWhenResolved = -1;
      await store.commit([{ pgno: 2, data }]).then(() => (exportedWhenResolved = exported));
      const after = store.metrics();
      tries.push({ waited: after.checkpointWaits - before.checkpointWaits, handedOver: after.handedOverFrames - before.handedOverFrames, exportedBefore, exportedWhenResolved });
      await backlog;
    }
    await busy.close();
    const stats = await handle.stop();
    await other.close();
    await store.close();
    expect(tries.map((t) => t.waited), "each try's batch waited for a checkpoint").toEqual(tries.map(() => 1));
    expect(
      tries.some(caughtUp),
      `the follower read the other connection's commit itself while the batch waited (nothing handed over at the restart), and it was in the stream when that batch resolved (per try: ${JSON.stringify(tries)})`,
    ).toBe(true);
    expect(stats.commits).toBe(1 + 2 * tries.length);
  });
});
