// python3 sqlite3 writers SIGKILLed between the two copies of their wal-index header publish
// (test/helpers/tear-header-shim.c) while a walnut/sql store commits back to back with a follow
// export of its own. The committer takes WRITE and recovers the torn header; the export, asking
// for the header meanwhile, saw it torn and, WRITE being this connection's, waited for RECOVER
// and then recovered again: a second scan of the WAL racing the committer's next append (or the
// WAL restart after its auto-checkpoint), published over the committer's headers. Acknowledged
// walnut/sql rows vanished (sqlite3 missed 1 of 741 in one run), reads missed acknowledged rows
// and commits failed WALNUT_CORRUPT ("the wal-index describes frames of a WAL generation that is
// not on disk"), in 4 of 4 runs of 24 rounds before the fix (python3 found the database
// malformed in some). The first case shows the race every time: a commit and three snapshots
// right behind one torn header made 4 recoveries (1 now). A recovery asked for by header() now
// reads the header again once it holds RECOVER and does nothing when it is good, as SQLite's
// walIndexReadHdr does under its lock.
import { execFileSync, spawn } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { restore } from '../../lib/export/restore';
import { WalnutFile } from '../../lib/io/file';
import { isWalnutError, openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';
import { buildTearHeaderShim } from '../helpers/tear-header-shim';

const dir = tmpDir();
let SHIM = '';
const ROUNDS = process.env.WALNUT_SCALE === '1' ? 60 : 8;
let shimError: string | null = null;

beforeAll(() => void ({ path: SHIM, error: shimError } = buildTearHeaderShim(dir)));

/** One python3 transaction of `rows` rows (w = 5), killed between its header's two copies; resolves with how it ended. */
function tornTransaction(db: string, rows: number): Promise<string | number | null> {
  const code = [
    'import sqlite3, sys',
    'c = sqlite3.connect(sys.argv[1], timeout=20, isolation_level=None)',
    "c.execute('PRAGMA wal_autocheckpoint=0')",
    "c.execute('BEGIN IMMEDIATE')",
    "c.executemany('INSERT INTO t(w, i, v) VALUES (5, 0, randomblob(3900))', [()] * int(sys.argv[2]))",
    "c.execute('COMMIT')",
    "print('acknowledged', flush=True)",
  ].join('\n');
  const child = spawn('python3', ['-c', code, db, String(rows)], { env: { ...process.env, LD_PRELOAD: SHIM, TEAR_SHM: `${db}-shm` }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve(out.includes('acknowledged') ? 'acknowledged' : (signal ?? code))));
}

/** The store's recoveries (walnut:recovery) of each database path. */
const recoveries = new Map<string, number>();
const onRecovery = (m: unknown): void => {
  const p = (m as { path?: string }).path ?? '';
  recoveries.set(p, (recoveries.get(p) ?? 0) + 1);
};
diagnostics.subscribe('walnut:recovery', onRecovery);
afterAll(() => diagnostics.unsubscribe('walnut:recovery', onRecovery));
const recoveriesOf = (db: string): number => recoveries.get(fs.realpathSync(db)) ?? 0;

const sqlite3 = (db: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 5000', db, sql], { encoding: 'utf8', maxBuffer: 1 << 24 }).trim();

it('one torn header, a commit and snapshots right behind it: the committer recovers it once, the snapshots wait for that recovery and rebuild nothing again', async (ctx) => {
  if (shimError !== null) ctx.skip(shimError);
  const db = path.join(dir, 'once.db');
  const d = await openDatabase(db, { autoCheckpoint: false });
  const failures: string[] = [];
  try {
    await d.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, i INTEGER, v BLOB); CREATE TABLE k(x); INSERT INTO k VALUES (1)');
    // a page of walnut's own (table k's), committed again unchanged: python3 never writes it
    const kRoot = (await d.get("SELECT rootpage AS r FROM sqlite_master WHERE name = 'k'"))!.r as number;
    const s0 = await d.store.snapshot();
    const kPage = Buffer.from(await s0.read(kRoot));
    s0.release();
    for (let round = 0; round < 3; round++) {
      await new Promise((r) => setTimeout(r, 20)); // the store lets WRITE go
      expect(await tornTransaction(db, 1500)).toBe('SIGKILL');
      const before = recoveriesOf(db);
      // the committer takes WRITE and recovers; the snapshots ask for the header while it does
      const commits = Array.from({ length: 5 }, () => d.store.commit([{ pgno: kRoot, data: kPage }]));
      await new Promise(setImmediate);
      const snapshots = Array.from({ length: 3 }, () => d.store.snapshot().then((s) => s.release()));
      const results = await Promise.all(commits);
      await Promise.all(snapshots);
      await new Promise((r) => setTimeout(r, 30));
      const n = recoveriesOf(db) - before;
      if (n !== 1) failures.push(`round ${round}: ${n} recoveries of one torn header`);
      const mxFrame = fs.readFileSync(`${db}-shm`).readUInt32LE(16);
      if (mxFrame < results[4]!.lastFrame) failures.push(`round ${round}: the header names ${mxFrame} frames, the last commit was acknowledged at frame ${results[4]!.lastFrame}`);
    }
  } finally {
    await d.close();
  }
  expect(failures).toEqual([]);
  expect(sqlite3(db, 'PRAGMA integrity_check; SELECT count(*) FROM t; SELECT x FROM k').split('\n')).toEqual(['ok', '4500', '1']);
});

it(`${ROUNDS} torn sqlite3 commits beside walnut/sql committing with a follow export: every acknowledged row stays, no commit fails, the stream restores to the same rows`, async (ctx) => {
  if (shimError !== null) ctx.skip(shimError);
  const db = path.join(dir, 'race.db');
  const d = await openDatabase(db, { autoCheckpoint: 1000 });
  await d.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, i INTEGER, v BLOB)');
  const ark = path.join(dir, 'race.ark');
  const sink = await WalnutFile.open(ark, { create: true, truncate: true });
  const handle = d.store.exportTo(sink, { follow: true, pollMs: 5 });
  const failures: string[] = [];
  let acked = -1;
  let stop = false;
  const committer = (async () => {
    for (let k = 0; !stop; ) {
      try {
        await d.run('INSERT INTO t(w, i, v) VALUES (0, ?, randomblob(800))', [k]);
        acked = k++;
      } catch (e) {
        // a python3 writer held WRITE past the busy timeout, or its commit overtook the statement
        if (!isWalnutError(e, 'WALNUT_BUSY') && !isWalnutError(e, 'WALNUT_CONFLICT')) failures.push(`insert ${k}: ${(e as { code?: string }).code}: ${(e as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  // a reader of the store's own beside it: each snapshot asks for the header too
  const reader = (async () => {
    while (!stop) {
      try {
        (await d.store.snapshot()).release();
      } catch (e) {
        failures.push(`snapshot: ${(e as { code?: string }).code}: ${(e as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  })();
  const torn: (string | number | null)[] = [];
  try {
    for (let round = 0; round < ROUNDS && failures.length === 0; round++) {
      const recoveredBefore = recoveriesOf(db);
      const ended = await tornTransaction(db, 500 + ((round * 397) % 2500));
      // killed between its header's copies, or (rarely) acknowledged; an error ("database disk
      // image is malformed") is a failure
      if (ended !== 'SIGKILL' && ended !== 'acknowledged') failures.push(`round ${round}: python3 ended ${ended}`);
      torn.push(ended);
      const before = acked;
      const seen = new Set((await d.all('SELECT i FROM t WHERE w = 0')).map((r) => r.i as number));
      for (let k = 0; k <= before; k++) if (!seen.has(k)) failures.push(`round ${round}: acknowledged row ${k} not read`);
      // the read's snapshot recovered the torn header if nothing did before; a racing second recovery shows within this
      await new Promise((r) => setTimeout(r, 50));
      const n = recoveriesOf(db) - recoveredBefore;
      if (n !== (ended === 'SIGKILL' ? 1 : 0)) failures.push(`round ${round}: ${n} recoveries after python3 ended ${ended}`);
    }
  } finally {
    stop = true;
    await committer;
    await reader;
    await handle.stop();
    await sink.close();
    await d.close();
  }
  expect(failures).toEqual([]);
  expect(torn.filter((t) => t === 'SIGKILL').length).toBeGreaterThan(ROUNDS / 2);
  const rows = sqlite3(db, 'PRAGMA integrity_check; SELECT count(*), count(DISTINCT i), max(i) FROM t WHERE w = 0').split('\n');
  expect(rows[0]).toBe('ok');
  const [n, distinct, max] = rows[1]!.split('|').map(Number);
  expect(distinct).toBe(n);
  expect(max).toBeGreaterThanOrEqual(acked);
  expect(n).toBe(max! + 1);
  const target = path.join(dir, 'race-restored.db');
  await restore(fs.createReadStream(ark), target);
  expect(fs.readFileSync(target).equals(fs.readFileSync(db))).toBe(true);
}, 60_000);
