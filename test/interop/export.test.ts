// Export and restore on real data: SQLite and walnut writing while a follow-mode export runs,
// restores checked by SQLite, point-in-time restore, every truncation point, flipped bits.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { WalStreamReader } from '../../lib/export/framing';
import { decodeRecord } from '../../lib/export/records';
import { createExportStream } from '../../lib/export/stream';
import { restore } from '../../lib/export/restore';
import { WalnutFile } from '../../lib/io/file';
import { SqlitePeer } from '../helpers/children';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { Database } from '../helpers/sqlite';
import { memoryTmpDir, tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();
let n = 0;

function sqliteDb(): string {
  const p = path.join(dir, `src${n++}.db`);
  const db = new Database(p);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  for (let i = 0; i < 50; i++) db.prepare('INSERT INTO t(v) VALUES (?)').run(`base ${i} `.repeat(30));
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return p;
}

function rowsOf(p: string) {
  const db = new Database(p, { readonly: true });
  try {
    return db.prepare('SELECT * FROM t ORDER BY id').all();
  } finally {
    db.close();
  }
}

describe('export while writers run, then restore', () => {
  it('SQLite and walnut commit during a follow export; the restore has every row, integrity ok', async () => {
    const src = sqliteDb();
    const store = await open(src);
    const file = await WalnutFile.open(path.join(dir, 'follow.ark'), { create: true, truncate: true });
    const handle = store.exportTo(file, { follow: true, pollMs: 5 });
    const sq = new SqlitePeer(src);
    for (let i = 0; i < 40; i++) {
      await sq.exec(`INSERT INTO t(v) VALUES ('live ${i} ${'x'.repeat(i * 20)}')`);
      if (i % 5 === 0) {
        const snap = await store.snapshot();
        const page1 = await snap.read(1);
        snap.release();
        await store.commit([{ pgno: 1, data: page1 }]); // walnut's own (valid) commits in between
      }
      if (i === 20) await store.checkpoint('passive');
    }
    const stats = await handle.stop();
    await file.close();
    expect(stats.commits).toBeGreaterThanOrEqual(48);
    const expected = await sq.all('SELECT * FROM t ORDER BY id');
    await sq.close();
    await store.close();

    const target = path.join(dir, 'restored.db');
    const r = await restore(fs.createReadStream(path.join(dir, 'follow.ark')), target);
    expect(r.stoppedBy).toBeNull();
    expect(r.commits).toBe(stats.commits);
    expect(rowsOf(target)).toEqual(expected);
    const db = new Database(target);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  });

  it('a stream file larger than the restore\'s read buffers, transactions spanning their reuse: every row restored', async () => {
    // restore reads a stream file into 4 reused 8 MiB buffers (framing.ts fromFile): a 40 MiB
    // transaction is still held (not verified yet) when the first buffers are read into again
    const src = sqliteDb();
    const store = await open(src);
    const file = await WalnutFile.open(path.join(dir, 'big.ark'), { create: true, truncate: true });
    const handle = store.exportTo(file, { follow: true, pollMs: 5 });
    const db = new Database(src);
    db.pragma('wal_autocheckpoint = 0');
    const ins = db.prepare('INSERT INTO t(v) VALUES (?)');
    for (const [tx, rows] of [1000, 10_000, 1000].entries()) {
      db.transaction(() => {
        for (let i = 0; i < rows; i++) ins.run(`${tx}:${i} `.repeat(400).slice(0, 3900));
      })();
      await new Promise((r) => setTimeout(r, 20));
    }
    db.close();
    const stats = await handle.stop();
    await file.close();
    await store.close();
    expect(fs.statSync(path.join(dir, 'big.ark')).size).toBeGreaterThan(40 << 20);
    const expected = rowsOf(src);
    const target = path.join(dir, 'big-restored.db');
    const r = await restore(fs.createReadStream(path.join(dir, 'big.ark')), target);
    expect(r.stoppedBy).toBeNull();
    expect(r.commits).toBe(stats.commits);
    expect(rowsOf(target)).toEqual(expected);
  });

  it('createExportStream + point-in-time restore (until a commit sequence and a time); a broken tail after commit `until` is not read', async () => {
    const src = sqliteDb();
    const stream = createExportStream(src, { follow: true, pollMs: 2 });
    const chunks: Buffer[] = [];
    stream.on('data', (c) => chunks.push(c));
    const sq = new SqlitePeer(src);
    await until(() => recordKinds(chunks).includes('baseEnd')); // the base image is out (waited for: a 50 ms sleep is not always enough on a loaded machine)
    const counts: number[] = [];
    for (let i = 0; i < 10; i++) {
      await sq.exec(`INSERT INTO t(v) VALUES ('pit ${i}')`);
      counts.push(((await sq.get('SELECT count(*) AS c FROM t')) as { c: number }).c);
      await new Promise((r) => setTimeout(r, 15)); // most commits exported on a poll of their own
    }
    await sq.close();
    await until(() => recordKinds(chunks).filter((k) => k === 'commitMeta').length === 10); // every commit exported (waited for, not slept for)
    stream.destroy();
    await new Promise((r) => setTimeout(r, 30));
    const bytes = Buffer.concat(chunks);
    for (const k of [1, 4, 10]) {
      const target = path.join(dir, `pit-${k}.db`);
      const r = await restore(bytes, target, { until: k });
      expect(r.lastCommitSeq).toBe(k);
      expect(rowsOf(target)).toHaveLength(counts[k - 1]!);
    }
    // by time: the times the exporter stamped (as it saw the commits; a slow poll may stamp
    // several with one time), at a commit whose successor was stamped later
    const times = new Map<number, number>();
    for (const payload of WalStreamReader.fromBuffer(bytes)) {
      const rec = decodeRecord(payload);
      if (rec.kind === 'commitMeta') times.set(Number(rec.seq), Number(rec.timeMs));
    }
    const k = [6, 5, 7, 4, 8, 3, 9, 2].find((c) => times.get(c)! < times.get(c + 1)!);
    expect(k).toBeDefined();
    const byTime = path.join(dir, 'pit-time.db');
    await restore(bytes, byTime, { until: new Date(times.get(k!)!) });
    expect(rowsOf(byTime)).toHaveLength(counts[k! - 1]!);
    await expect(restore(bytes, byTime, { until: 1 })).rejects.toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'exists' });
    expect((await restore(bytes, path.join(dir, 'pit-last.db'), { until: 10 })).stoppedBy).toBeNull(); // the stream ends there: nothing left unapplied

    // a broken tail after commit `until` (a sequence) is not read: stoppedBy 'until', not what
    // is wrong with it (it was: Truncated / ChecksumChainBroken, the file at that commit all the same)
    let next = -1; // where the record after commit 4's COMMIT_META begins
    let sawFour = false;
    for (const payload of WalStreamReader.fromBuffer(bytes)) {
      const at = payload.byteOffset - bytes.byteOffset - 8; // its u64 length first
      if (sawFour) {
        next = at;
        break;
      }
      const rec = decodeRecord(payload);
      sawFour = rec.kind === 'commitMeta' && rec.seq === 4n;
    }
    expect(next).toBeGreaterThan(0);
    const torn = bytes.subarray(0, next + 8 + 10);
    const flipped = Buffer.from(bytes.subarray(0, next + 200));
    flipped[next + 8 + 100]! ^= 0xff;
    for (const [name, tail, whole] of [['torn', torn, 'Truncated'], ['flipped', flipped, null]] as const) {
      const r = await restore(tail, path.join(dir, `pit-${name}-until.db`), { until: 4 });
      expect(r).toMatchObject({ lastCommitSeq: 4, stoppedBy: 'until' });
      expect(rowsOf(path.join(dir, `pit-${name}-until.db`))).toHaveLength(counts[3]!);
      const w = await restore(tail, path.join(dir, `pit-${name}-whole.db`));
      expect(w.lastCommitSeq).toBe(4); // without until the same file, and the tail's fault named
      if (whole !== null) expect(w.stoppedBy).toBe(whole);
      else expect(w.stoppedBy).not.toBeNull();
    }
  });
});

/** The kinds of the whole records among `chunks` so far (a record still arriving ends the list). */
function recordKinds(chunks: Buffer[]): string[] {
  const kinds: string[] = [];
  try {
    for (const payload of WalStreamReader.fromBuffer(Buffer.concat(chunks))) kinds.push(decodeRecord(payload).kind);
  } catch {
    // the last record is not all there yet
  }
  return kinds;
}

/** A follow-mode export to a file while SQLite commits `inserts` rows, one per poll. */
async function exportWhileSqliteWrites(name: string, inserts: number) {
  const src = sqliteDb();
  const store = await open(src);
  const file = path.join(dir, `${name}.ark`);
  const sink = await WalnutFile.open(file, { create: true, truncate: true });
  const handle = store.exportTo(sink, { follow: true, pollMs: 2 });
  const sq = new SqlitePeer(src);
  for (let i = 0; i < inserts; i++) {
    await sq.exec(`INSERT INTO t(v) VALUES ('${name} ${i}')`);
    await new Promise((r) => setTimeout(r, 10));
  }
  await sq.close();
  const stats = await handle.stop();
  await sink.close();
  await store.close();
  return { bytes: fs.readFileSync(file), stats };
}

describe('createExportStream destroyed mid-stream', () => {
  it('the export ends at once and closes its connection: no read mark left (sqlite3 TRUNCATE succeeds), no descriptor left', async () => {
    const p = path.join(dir, `destroyed${n++}.db`);
    const s = new Database(p, { timeout: 100 });
    try {
      s.pragma('journal_mode = WAL');
      s.pragma('wal_autocheckpoint = 0'); // the rows stay in the WAL: the export holds a WAL read mark
      s.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
      s.transaction(() => {
        const insert = s.prepare('INSERT INTO t(v) VALUES (zeroblob(3000))');
        for (let i = 0; i < 3000; i++) insert.run();
      })();
      const openFds = () => fs.readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(p);
        } catch {
          return false; // the directory's own descriptor, gone by now
        }
      }).length;
      const fdsBefore = openFds();
      const parkedBefore = WalnutFile.pendingCloses();
      const stream = createExportStream(p);
      const first: Buffer = await new Promise((resolve, reject) => {
        stream.once('data', resolve);
        stream.once('error', reject);
      });
      expect(first.length).toBeGreaterThan(0);
      stream.pause(); // nobody reads: the export waits on its sink (12 MiB to go)
      const closed = new Promise((resolve) => stream.once('close', resolve));
      stream.destroy();
      await closed; // before: 'close' came, but the export waited forever and kept its connection
      // only the descriptors kept open for better-sqlite3's locks in this process remain (fd_registry.h)
      expect(openFds()).toBe(fdsBefore + WalnutFile.pendingCloses() - parkedBefore);
      expect(s.pragma('wal_checkpoint(TRUNCATE)')).toEqual([{ busy: 0, log: 0, checkpointed: 0 }]);
    } finally {
      s.close();
    }
  });
});

// Each variant of a damaged stream is restored to a database in memory (memoryTmpDir): hundreds
// of throwaway restores whose subject is what the restore accepts, not the disk under it.
describe('damaged streams never give a corrupt database', () => {
  it('every truncation point restores a prefix of the commits or fails with Truncated', async () => {
    const { bytes, stats } = await exportWhileSqliteWrites('cut', 6);
    const ends = [0];
    let at = 8;
    for (const r of WalStreamReader.fromBuffer(bytes)) {
      at += 8 + r.length;
      ends.push(at);
    }
    let seenPrefixes = 0;
    const target = path.join(memoryTmpDir('walnut-cut-'), 'cut.db');
    for (let cut = 0; cut <= bytes.length; cut += cut < 200 ? 1 : 97) {
      const r = await restore(bytes.subarray(0, cut), target, { force: true }).catch((e) => e);
      if (r instanceof Error) {
        expect((r as { code?: string }).code).toBe('WALNUT_INVALID_FRAMING'); // before the base image completed
        continue;
      }
      expect(r.commits).toBeLessThanOrEqual(stats.commits);
      const db = new Database(target);
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      db.close();
      seenPrefixes++;
    }
    expect(seenPrefixes).toBeGreaterThan(5);
    const whole = await restore(bytes, target, { force: true });
    expect(whole).toMatchObject({ commits: stats.commits, stoppedBy: null });
  });

  it('flipped bits are caught: the restore stops at the last good commit', async () => {
    const { bytes, stats } = await exportWhileSqliteWrites('flip', 5);
    const target = path.join(memoryTmpDir('walnut-flip-'), 'flip.db');
    let detected = 0;
    for (let trial = 0; trial < 60; trial++) {
      const damaged = Buffer.from(bytes);
      const at = 8 + Math.floor((trial / 60) * (bytes.length - 8));
      damaged[at]! ^= 1 << (trial % 8);
      const r = await restore(damaged, target, { force: true }).catch((e) => e);
      if (r instanceof Error) {
        expect(['WALNUT_INVALID_FRAMING', 'WALNUT_CORRUPT']).toContain((r as { code?: string }).code);
        detected++;
        continue;
      }
      if (r.commits < stats.commits) detected++;
      const db = new Database(target);
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      db.close();
    }
    expect(detected).toBeGreaterThan(40);
  });
});

describe('exportTo input', () => {
  it('a target or options it cannot use is refused at once; a record sink that throws ends the export with a WalnutError', async () => {
    const store = await open(sqliteDb());
    try {
      for (const target of [null, undefined, {}, 'out.ark', 5, { appendRecord() {} }]) {
        expectWalnutError(() => store.exportTo(target as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'target' });
      }
      const sink = () => new PassThrough().resume();
      for (const [options, reason] of [['x', 'options'], [[true], 'options'], [null, 'options'], [{ follow: null }, 'follow'], [{ follow: 'yes' }, 'follow'], [{ pollMs: 0 }, 'pollMs'], [{ pollMs: 2 ** 31 }, 'pollMs'], [{ pollMs: Number.NaN }, 'pollMs']] as const) {
        expectWalnutError(() => store.exportTo(sink(), options as never), 'WALNUT_INVALID_ARGUMENT', { reason });
      }
      expect((await store.exportTo(sink(), undefined).done).basePages).toBeGreaterThan(0); // undefined: no options (null is refused: lib/option-names.ts)
      // an option it does not take (misspelt follow) is refused, not dropped (it exported once and ended); createExportStream too
      expectWalnutError(() => store.exportTo(sink(), { folow: true } as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expectWalnutError(() => store.exportTo(sink(), Object.create({ folow: true }) as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      // (createExportStream throws them before a stream exists: test/hostile/export-stream-arguments)
      for (const options of [{ follow: true, polMs: 5 }, Object.assign(Object.create({ polMs: 5 }), { follow: true, busyTimeout: 100 })]) {
        expectWalnutError(() => createExportStream(store.path, options as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      }
      const failing = store.exportTo({ appendRecord: () => { throw new Error('disk gone'); }, flush: async () => undefined });
      const err = await expectRejectsWalnut(failing.done, 'WALNUT_IO');
      expect(err.message).toContain('disk gone');
    } finally {
      await store.close();
    }
  });
});

describe('an export onto a full disk', () => {
  it('ends with WALNUT_FULL (not WALNUT_IO), whatever the sink (WalnutFile, Writable; /dev/full: every write ENOSPC), and in follow mode when the disk fills after the base image; its snapshot let go', async () => {
    const db = sqliteDb();
    const store = await open(db);
    const peer = new SqlitePeer(db);
    try {
      for (const kind of ['WalnutFile', 'Writable'] as const) {
        for (const follow of [false, true]) {
          const file = kind === 'WalnutFile' ? await WalnutFile.open('/dev/full') : null;
          const sink = file ?? fs.createWriteStream('/dev/full');
          const e = await expectRejectsWalnut(store.exportTo(sink, { follow }).done, 'WALNUT_FULL');
          expect(e.message, `${kind}, follow ${follow}`).toMatch(/ENOSPC|No space left/);
          await file?.close();
          if (kind === 'Writable') (sink as fs.WriteStream).destroy();
        }
      }
      // a follow export whose disk fills once the base image is out (a Writable whose writes then fail ENOSPC)
      let full = false;
      let written = 0;
      const filling = new Writable({
        write(chunk: Buffer, _encoding, callback) {
          if (!full) {
            written += chunk.length;
            callback();
          } else {
            callback(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' }));
          }
        },
      });
      const handle = store.exportTo(filling, { follow: true, pollMs: 2 });
      await until(() => written > 0);
      full = true;
      for (let i = 0; i < 5; i++) await peer.exec(`INSERT INTO t(v) VALUES ('after the base ${i}')`);
      await expectRejectsWalnut(handle.done, 'WALNUT_FULL');
      // nothing pinned: sqlite3 restarts and truncates the WAL
      expect(await peer.all('PRAGMA wal_checkpoint(TRUNCATE)')).toEqual([{ busy: 0, log: 0, checkpointed: 0 }]);
    } finally {
      await peer.close();
      await store.close();
    }
  });
});
