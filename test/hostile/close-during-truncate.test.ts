// store.checkpoint('truncate' | 'restart') raced against store.close() at many interleavings:
// close() called just before the checkpoint, in the same turn right after it, after 1..50
// microtasks, after 1 or 3 setImmediate turns and after 1, 5 or 20 ms timers; with and without
// the store's own follow export (exportTo(..., { follow: true })) running; with 4 committers in
// flight (store.commit, one page each); and with no other reader, a python3 sqlite3 reader
// holding a read transaction below the WAL's end through the whole race, or one that ends it
// 15 ms in. The database is a real SQLite file (sqlite3 built it): a table holding one blob whose
// overflow chain spans pages 3..202; each commit rewrites one overflow page's payload (its
// next-page pointer kept), a page of its own, so SQLite's integrity_check still applies and
// every page tells which commit wrote it.
// Asserted for every interleaving:
//  - every promise settles (checkpoint, close, each commit, the export's done) within a hang
//    guard; a rejection is a WalnutError with a stable code (the checkpoint: WALNUT_CLOSED;
//    commits: WALNUT_CLOSED, or WALNUT_BUSY while the checkpoint held WRITE waiting for the
//    sqlite3 reader); a checkpoint called after close() began rejects WALNUT_CLOSED; a truncate
//    that came back not busy reports walFrames 0; no unhandled rejection;
//  - after close (and the reader gone): sqlite3's PRAGMA integrity_check is ok; a reopened
//    store reads every acknowledged commit's page as it wrote it; no lock is left held (a
//    sqlite3 process writes and runs PRAGMA wal_checkpoint(TRUNCATE): busy 0);
//  - the export's stream (cut by close, as documented) restores; each page of the restored
//    database is either the source's page or the page as it was before any commit (the stream
//    is a prefix of the commits, each page written once), and integrity_check is ok.
// The same race once more through walnut/sql (a truncate, the follow export, 4 db.run() callers,
// db.store.close() under them): every call ends WALNUT_CLOSED, db.close() resolves, every
// acknowledged row is there (a WALNUT_CLOSED thrown inside SQLite's VFS callbacks once lost one:
// sql-store-closed-mid-statement.test.ts).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { CheckpointResult } from '../../lib/checkpoint/execute';
import { WalnutError } from '../../lib/errors';
import { restore } from '../../lib/export/restore';
import { WalnutFile } from '../../lib/io/file';
import { open } from '../../lib/commit/store';
import { openDatabase } from '../../lib/sql';
import { sqliteReaderProcess } from '../helpers/children';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { writerRows } from '../helpers/writer-rows';

expectNoUnhandledRejections();

const dir = tmpDir();
const BUSY_MS = 250;
const PAGE = 4096;
/** The blob's overflow pages: FIRST..LAST, each one's first 4 bytes the next one's number. */
const FIRST = 3;
const LAST = 202;
/** Every promise of one interleaving settles within this (a hang detector: the slowest path waits out BUSY_MS twice). */
const HANG_MS = 8000;

function sqlite3(file: string, sql: string): string {
  return execFileSync('sqlite3', ['-cmd', '.timeout 2000', file, sql], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

type Timing = { name: string; gap: () => Promise<void> };
const microtasks = (n: number) => async () => {
  for (let i = 0; i < n; i++) await Promise.resolve();
};
const turns = (n: number) => async () => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};
const ms = (n: number) => () => new Promise<void>((r) => setTimeout(r, n));
/** How long after checkpoint() is called close() is called ('before': close() first). Seven (of eleven first tried: 10 and 50 microtasks, 3 turns and 5 ms found nothing the others did not, at 20 s more of the suite). */
const TIMINGS: Timing[] = [
  { name: 'before', gap: async () => undefined },
  { name: 'same turn', gap: async () => undefined },
  { name: '1 microtask', gap: microtasks(1) },
  { name: '3 microtasks', gap: microtasks(3) },
  { name: '1 turn', gap: turns(1) },
  { name: '1 ms', gap: ms(1) },
  { name: '20 ms', gap: ms(20) },
];

type ReaderMode = 'none' | 'holding' | 'releasing';

interface Outcome {
  checkpoint: string;
  acked: number;
  refused: Record<string, number>;
  exportEnd: string | null;
  restoredCommits: number | null;
}

const codeOf = (e: unknown): string => (e instanceof WalnutError ? e.code : `not a WalnutError: ${String(e)}`);

function withinHangGuard<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still pending after ${HANG_MS} ms (hang)`)), HANG_MS)));
  return Promise.race([p, hang]).finally(() => clearTimeout(timer));
}

let reader: ReturnType<typeof sqliteReaderProcess>; // (helpers/sqlite-reader.py, one reply line per command)
let seq = 0;
let template: string;

/** A WAL-mode SQLite database (built by SQLite) whose table b holds one blob over overflow pages FIRST..LAST. */
function buildTemplate(): string {
  const file = path.join(dir, 'template.db');
  const d = new Database(file);
  d.pragma(`page_size = ${PAGE}`);
  d.pragma('journal_mode = WAL');
  d.exec('CREATE TABLE b(v BLOB)');
  // 4,000 bytes of the blob on the leaf, then 4,092 per overflow page: LAST - FIRST + 1 of them
  d.prepare('INSERT INTO b VALUES (zeroblob(?))').run(4000 + (LAST - FIRST + 1) * (PAGE - 4) - 100);
  d.pragma('wal_checkpoint(TRUNCATE)');
  d.close();
  const bytes = fs.readFileSync(file);
  expect(bytes.length).toBe(LAST * PAGE);
  for (let pgno = FIRST; pgno <= LAST; pgno++) expect(bytes.readUInt32BE((pgno - 1) * PAGE), `overflow page ${pgno}'s next pointer`).toBe(pgno === LAST ? 0 : pgno + 1);
  return file;
}

/** Overflow page `pgno` with its payload stamped by commit `n` (the next-page pointer kept). */
function stamped(pgno: number, n: number): Buffer {
  const b = Buffer.alloc(PAGE);
  b.writeUInt32BE(pgno === LAST ? 0 : pgno + 1, 0);
  for (let i = 4; i + 4 <= PAGE; i += 4) b.writeUInt32LE((n * 2654435761 + pgno * 40503 + i) >>> 0, i);
  return b;
}

/** One interleaving: returns what happened; throws (an expect) on anything the header rules out. */
async function race(mode: 'truncate' | 'restart', follow: boolean, readerMode: ReaderMode, timing: Timing): Promise<Outcome> {
  const name = `${mode}-${follow ? 'follow' : 'plain'}-${readerMode}-${timing.name.replace(/ /g, '')}-${seq++}`;
  const src = path.join(dir, `${name}.db`);
  fs.copyFileSync(template, src);
  const before = fs.readFileSync(src);
  const store = await open(src, { busyTimeout: BUSY_MS });
  let made = 0;
  const acked: number[] = []; // commit n wrote page FIRST + n
  const commit = async () => {
    const n = made++;
    if (FIRST + n > LAST) throw new Error('out of overflow pages');
    await store.commit([{ pgno: FIRST + n, data: stamped(FIRST + n, n) }]);
    acked.push(n);
  };
  await Promise.all(Array.from({ length: 20 }, commit)); // one batch

  let sink: WalnutFile | null = null;
  let exportDone: Promise<string> | null = null;
  const ark = path.join(dir, `${name}.ark`);
  if (follow) {
    sink = await WalnutFile.open(ark, { create: true, truncate: true });
    const handle = store.exportTo(sink, { follow: true, pollMs: 5 });
    exportDone = handle.done.then(
      () => 'done',
      (e: unknown) => codeOf(e),
    );
    // the base image is out (a cut inside it leaves a stream that does not restore, as
    // documented): a commit made once the base began is in the stream only after the base
    while (!fs.existsSync(ark) || fs.statSync(ark).size <= 8) await new Promise((r) => setTimeout(r, 1));
    const n = made;
    await commit();
    const mark = stamped(FIRST + n, n).subarray(4, 68);
    for (let waited = 0; !fs.readFileSync(ark).includes(mark); waited++) {
      if (waited > HANG_MS) throw new Error(`${name}: the export never followed`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }
  if (readerMode !== 'none') {
    await reader.cmd(`open ${src}`);
    await reader.cmd('begin'); // a read mark at the WAL's end...
    await Promise.all(Array.from({ length: 5 }, commit)); // ...and frames past it: a restart must wait for it
  }

  // 4 committers until close() refuses them; each outcome is caught where it happens
  const refused: Record<string, number> = {};
  const unexpected: unknown[] = [];
  let stop = false;
  const committers = Array.from({ length: 4 }, async () => {
    while (!stop && FIRST + made <= LAST) {
      try {
        await commit();
      } catch (e) {
        const code = codeOf(e);
        refused[code] = (refused[code] ?? 0) + 1;
        if (code === 'WALNUT_CLOSED') return;
        if (code !== 'WALNUT_BUSY') return void unexpected.push(e);
      }
    }
  });
  await new Promise((r) => setTimeout(r, 2)); // commits in flight

  let closing: Promise<void>;
  let checkpoint: Promise<CheckpointResult>;
  const endRead = () => void reader.cmd('end').catch((e: unknown) => unexpected.push(e));
  if (timing.name === 'before') {
    closing = store.close();
    checkpoint = store.checkpoint(mode);
    if (readerMode === 'releasing') setTimeout(endRead, 15);
  } else {
    checkpoint = store.checkpoint(mode);
    if (readerMode === 'releasing') setTimeout(endRead, 15);
    await timing.gap();
    closing = store.close();
  }
  const checkpointOutcome = checkpoint.then(
    (r) => r,
    (e: unknown) => codeOf(e),
  );
  const closeOutcome = closing.then(
    () => 'closed',
    (e: unknown) => `close() rejected: ${codeOf(e)} ${(e as Error).message}`,
  );
  try {
    expect(await withinHangGuard(`${name} close()`, closeOutcome), name).toBe('closed');
    stop = true;
    const cp = await withinHangGuard(`${name} checkpoint`, checkpointOutcome);
    await withinHangGuard(`${name} committers`, Promise.all(committers));
    const exportEnd = exportDone === null ? null : await withinHangGuard(`${name} export done`, exportDone);
    expect(unexpected.map((e) => String(e)), name).toEqual([]); // their messages (a WalnutError object printed as "[ …(4) ]" in a failure on a loaded machine)

    if (timing.name === 'before') expect(cp, name).toBe('WALNUT_CLOSED');
    if (typeof cp === 'string') expect(cp, name).toBe('WALNUT_CLOSED');
    else {
      expect(cp.mode, name).toBe(mode);
      if (mode === 'truncate' && !cp.busy) expect(cp.walFrames, name).toBe(0);
      if (readerMode === 'holding') expect(cp.busy, `${name}: the sqlite3 reader's mark is below the WAL's end`).toBe(true);
    }
    for (const code of Object.keys(refused)) expect(['WALNUT_CLOSED', 'WALNUT_BUSY'], `${name}: a commit got ${code}`).toContain(code);
    if (exportEnd !== null) expect(['done', 'WALNUT_CLOSED'], `${name}: the export ended with ${exportEnd}`).toContain(exportEnd);

    if (readerMode === 'holding') await reader.cmd('end');
    if (readerMode !== 'none') await reader.cmd('close');

    // the database as sqlite3 finds it: whole
    expect(sqlite3(src, 'PRAGMA integrity_check'), name).toBe('ok');
    // a reopened store reads every acknowledged commit's page as it wrote it
    const again = await open(src);
    const snap = await again.snapshot();
    try {
      for (const n of acked) expect((await snap.read(FIRST + n)).equals(stamped(FIRST + n, n)), `${name}: acknowledged commit ${n} (page ${FIRST + n})`).toBe(true);
    } finally {
      snap.release();
      await again.close();
    }
    const source = fs.readFileSync(src);
    // no lock left held: a sqlite3 process writes and truncates the WAL, not busy
    expect(sqlite3(src, "INSERT INTO b VALUES (x'00'); PRAGMA wal_checkpoint(TRUNCATE);"), `${name}: sqlite3's TRUNCATE after close`).toBe('0|0|0');

    let restoredCommits: number | null = null;
    if (follow) {
      await sink!.close();
      const target = path.join(dir, `${name}-restored.db`);
      const r = await restore(fs.createReadStream(ark), target);
      expect(r.stoppedBy, name).toBeNull();
      const got = fs.readFileSync(target);
      // the stream is a prefix of the commits, each on a page of its own: every page is the
      // source's, or the page before any commit (one not written yet at the cut)
      for (let pgno = 1; pgno <= LAST; pgno++) {
        const at = (pgno - 1) * PAGE;
        const page = got.subarray(at, at + PAGE);
        const same = page.equals(source.subarray(at, at + PAGE)) || (pgno >= FIRST && page.equals(before.subarray(at, at + PAGE)));
        expect(same, `${name}: restored page ${pgno} is neither the source's nor the original`).toBe(true);
      }
      expect(sqlite3(target, 'PRAGMA integrity_check'), `${name}: the restored stream`).toBe('ok');
      restoredCommits = r.commits;
    }
    return { checkpoint: typeof cp === 'string' ? cp : `${cp.busy ? 'busy' : 'ok'}/${cp.walFrames}`, acked: acked.length, refused, exportEnd, restoredCommits };
  } finally {
    stop = true;
  }
}

/** The race through walnut/sql: 4 db.run() callers, the store's follow export, a truncate and db.store.close() `timing` apart. */
async function sqlRace(timing: Timing): Promise<string> {
  const name = `sql-${timing.name.replace(/ /g, '')}-${seq++}`;
  const src = path.join(dir, `${name}.db`);
  const db = await openDatabase(src, { busyTimeout: BUSY_MS, readConnections: 0 });
  const store = db.store;
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
  let next = 1;
  const acked: number[] = [];
  const insert = () => {
    const id = next++;
    return db.run('INSERT INTO t(id, w, v) VALUES (?, 0, randomblob(600))', [id]).then(() => void acked.push(id));
  };
  for (let i = 0; i < 10; i++) await insert();
  const ark = path.join(dir, `${name}.ark`);
  const sink = await WalnutFile.open(ark, { create: true, truncate: true });
  const handle = store.exportTo(sink, { follow: true, pollMs: 5 });
  const exportDone = handle.done.then(
    () => 'done',
    (e: unknown) => codeOf(e),
  );
  // the base image is out once a row inserted after the export began is in the stream (its
  // blob's bytes lie verbatim in its leaf page's frame)
  const marker = Buffer.alloc(600);
  for (let i = 0; i + 4 <= marker.length; i += 4) marker.writeUInt32LE((seq * 2654435761 + i * 40503) >>> 0, i);
  const probe = next++;
  await db.run('INSERT INTO t(id, w, v) VALUES (?, 0, ?)', [probe, marker]);
  acked.push(probe);
  for (let waited = 0; !fs.readFileSync(ark).includes(marker.subarray(0, 64)); waited++) {
    if (waited > HANG_MS) throw new Error(`${name}: the export never followed`);
    await new Promise((r) => setTimeout(r, 1));
  }
  const ends: string[] = [];
  const callers = Array.from({ length: 4 }, async () => {
    for (;;) {
      try {
        await insert();
      } catch (e) {
        return void ends.push(codeOf(e));
      }
    }
  });
  await new Promise((r) => setTimeout(r, 2));
  let closing: Promise<void>;
  let checkpoint: Promise<CheckpointResult>;
  if (timing.name === 'before') {
    closing = store.close();
    checkpoint = store.checkpoint('truncate');
  } else {
    checkpoint = store.checkpoint('truncate');
    await timing.gap();
    closing = store.close();
  }
  const cp = await withinHangGuard(`${name} checkpoint`, checkpoint.then((r) => `${r.busy ? 'busy' : 'ok'}/${r.walFrames}`, codeOf));
  await withinHangGuard(`${name} close()`, closing);
  await withinHangGuard(`${name} callers`, Promise.all(callers));
  expect(await withinHangGuard(`${name} export done`, exportDone), name).toBe('WALNUT_CLOSED');
  expect(ends, name).toEqual(Array(4).fill('WALNUT_CLOSED'));
  // busy is SQLite's answer while this store's own transactions wait for WRITE behind the
  // truncate (README: it counts their read marks as busy at once; back-to-back callers keep it
  // busy with no close at all: 60 of 60 here)
  if (cp.startsWith('ok/')) expect(cp, name).toBe('ok/0');
  else if (!cp.startsWith('busy/')) expect(cp, name).toBe('WALNUT_CLOSED');
  await withinHangGuard(`${name} db.close()`, db.close());
  await sink.close();

  expect(sqlite3(src, 'PRAGMA integrity_check'), name).toBe('ok');
  const rows = writerRows(src);
  const ids = new Set(rows.map((r) => r.id));
  expect(acked.filter((x) => !ids.has(x)), `${name}: acknowledged rows missing`).toEqual([]);
  expect(sqlite3(src, "INSERT INTO t(id, w, v) VALUES (-1, 9, x'00'); PRAGMA wal_checkpoint(TRUNCATE);"), `${name}: sqlite3's TRUNCATE after close`).toBe('0|0|0');
  const target = path.join(dir, `${name}-restored.db`);
  const r = await restore(fs.createReadStream(ark), target);
  expect(r.stoppedBy, name).toBeNull();
  expect(sqlite3(target, 'PRAGMA integrity_check'), `${name}: the restored stream`).toBe('ok');
  const bySrc = new Map(rows.map((x) => [x.id, x.v]));
  const restored = writerRows(target);
  for (const x of restored) expect(bySrc.get(x.id)?.equals(x.v), `${name}: restored row ${x.id} is not the source's`).toBe(true);
  return `${timing.name}: ${cp} acked ${acked.length}, the stream restored ${restored.length} rows`;
}

beforeAll(() => {
  reader = sqliteReaderProcess();
  template = buildTemplate();
});
afterAll(async () => {
  await reader.end();
});

describe('checkpoint(truncate | restart) raced against close()', () => {
  for (const mode of ['truncate', 'restart'] as const) {
    for (const follow of [false, true]) {
      for (const readerMode of ['none', 'holding', 'releasing'] as const) {
        const who = readerMode === 'none' ? 'no other reader' : readerMode === 'holding' ? 'a sqlite3 reader holding its read transaction' : 'a sqlite3 reader ending its read transaction 15 ms in';
        it(`${mode}, ${follow ? "the store's own follow export" : 'no export'}, ${who}: every interleaving settles, nothing acknowledged is lost, sqlite3 finds it whole and unlocked${follow ? ', the stream restores' : ''}`, async () => {
          const lines: string[] = [];
          for (const timing of TIMINGS) {
            const o = await race(mode, follow, readerMode, timing);
            lines.push(`${timing.name}: ${o.checkpoint} acked ${o.acked} refused ${JSON.stringify(o.refused)}${o.exportEnd === null ? '' : ` export ${o.exportEnd}, its stream restored ${o.restoredCommits} commits`}`);
          }
          console.log(`${mode} ${follow ? 'follow' : 'plain'} ${readerMode}:\n  ${lines.join('\n  ')}`);
        });
      }
    }
  }

  it("truncate through walnut/sql (4 db.run() callers, the store's own follow export, db.store.close()): every call ends WALNUT_CLOSED, nothing acknowledged is lost, sqlite3 finds it whole and unlocked, the stream restores", async () => {
    const lines: string[] = [];
    for (const timing of TIMINGS) lines.push(await sqlRace(timing));
    console.log(`walnut/sql truncate follow:\n  ${lines.join('\n  ')}`);
  });
});
