// The path-based tools (verify, inspect, rebuildWalIndex, recoverWithRepair) and verifySnapshot
// raced against close() of a store of the same database: the store's close() is the last
// connection's (it checkpoints and removes the -wal, -shm and FEC sidecar), so a tool that runs
// while it closes meets files being checkpointed and removed under it.
// Each tool is started: in the same tick just before close(), in the same tick just after it,
// after close() began (one setImmediate), and beside close() called twice. The database is a
// real SQLite file (better-sqlite3 built it: a table of rows over many pages); the store rewrites
// its pages with their own images, so the WAL holds frames and the database stays whole.
// Asserted for every case: every call settles within a hang guard; a tool resolves (a report
// that says ok: the database is whole whenever it looks) or rejects with a WalnutError of a
// code it documents (verifySnapshot of a snapshot close() released: WALNUT_CLOSED); close()
// resolves (both calls the same promise); no unhandled rejection; afterwards sqlite3's PRAGMA
// integrity_check is ok, walnut's verify (level 5) is ok, and no lock is left (a sqlite3
// TRUNCATE checkpoint is not busy).
// And createExportStream's Readable (its own connection) destroyed in the same tick as it is
// created, twice, after a turn, after 2 ms, from its 'caughtUp' listener and after it ended,
// alone and beside a store's close(): 'close' comes, an 'error' is a WalnutError, no lock is
// left, the lone export removes the -wal and -shm, and the database stays whole.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, type Store } from '../../lib/index';
import { WalnutError } from '../../lib/errors';
import { inspect } from '../../lib/integrity/inspect';
import { verify, verifySnapshot } from '../../lib/integrity/verify';
import { rebuildWalIndex } from '../../lib/wal-index/recover';
import { recoverWithRepair } from '../../lib/fec/recover';
import { createExportStream } from '../../lib/export/stream';
import { call, expectNoUnhandledRejections, settle } from '../helpers/outcomes';
import { Database } from '../helpers/sqlite';
import { sqliteIntegrity } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir();
let n = 0;

/** A WAL-mode database SQLite built (4 KiB pages, ~60 pages of rows), nothing in a -wal. */
function sqliteDatabase(): string {
  const file = path.join(dir, `t${n++}.db`);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); CREATE INDEX t_v ON t(v)');
  const insert = db.prepare('INSERT INTO t(v) VALUES (?)');
  for (let i = 0; i < 200; i++) insert.run(Buffer.alloc(500, i));
  db.close();
  return file;
}

/** A store of `file` whose WAL holds frames: it rewrites every page with its own image (one commit a page). */
async function storeWithFrames(file: string, fec: boolean): Promise<Store> {
  const store = await open(file, { autoCheckpoint: false, ...(fec ? { fec: { repairSymbols: 2, codec: 'rs' as const } } : {}) });
  const snap = await store.snapshot();
  const pages = [];
  for (let pgno = 1; pgno <= snap.dbSize; pgno++) pages.push({ pgno, data: Buffer.from(await snap.read(pgno)) });
  snap.release();
  for (let i = 0; i < pages.length; i += 8) await store.commit(pages.slice(i, i + 8));
  expect(store.metrics().walFrames).toBeGreaterThan(0);
  return store;
}

interface Tool {
  name: string;
  /** Runs the tool on `file` (`snap`: a snapshot of the store taken before the race). */
  run: (file: string, snap: ReturnType<Store['trySnapshotSync']>) => unknown;
  /** The codes it may reject with here. */
  codes: string[];
  /** What a resolved result must say. */
  check?: (value: unknown) => void;
  fec?: boolean;
}

const TOOLS: Tool[] = [
  { name: 'verify(level 5)', run: (f) => verify(f, 5, { busyTimeout: 2000 }), codes: ['WALNUT_BUSY'], check: (r) => expect(r).toMatchObject({ ok: true, issues: [] }) },
  { name: 'verify(level 5) with an FEC sidecar', fec: true, run: (f) => verify(f, 5, { busyTimeout: 2000 }), codes: ['WALNUT_BUSY'], check: (r) => expect(r).toMatchObject({ ok: true, issues: [] }) },
  { name: 'inspect', run: (f) => inspect(f), codes: [], check: (r) => expect(r).toMatchObject({ walMode: true }) },
  { name: 'rebuildWalIndex', run: (f) => rebuildWalIndex(f, { busyTimeout: 2000 }), codes: ['WALNUT_BUSY'], check: (r) => expect(r).toMatchObject({ pageSize: 4096 }) },
  { name: 'recoverWithRepair (FEC sidecar)', fec: true, run: (f) => recoverWithRepair(f), codes: ['WALNUT_BUSY'], check: (r) => expect(r).toMatchObject({ pageSize: 4096, repairedFrames: 0, fallback: null }) },
  {
    name: 'verifySnapshot',
    run: (_f, snap) => verifySnapshot(snap!, 5),
    codes: ['WALNUT_CLOSED'],
    check: (r) => expect(r).toMatchObject({ ok: true, issues: [] }),
  },
];

type When = 'before close(), same tick' | 'after close(), same tick' | 'after close() began (setImmediate)' | 'after close() began (1 ms)' | 'beside close() called twice';
const WHEN: When[] = ['before close(), same tick', 'after close(), same tick', 'after close() began (setImmediate)', 'after close() began (1 ms)', 'beside close() called twice'];

/** No lock of the store is left: sqlite3 writes, and its TRUNCATE checkpoint is not busy. */
function expectWholeAndUnlocked(file: string): void {
  expect(sqliteIntegrity(file)).toEqual(['ok']);
  const db = new Database(file, { timeout: 2000 });
  try {
    db.exec('INSERT INTO t(v) VALUES (x\'01\')');
    expect(db.pragma('wal_checkpoint(TRUNCATE)')).toEqual([{ busy: 0, log: 0, checkpointed: 0 }]);
  } finally {
    db.close();
  }
}

describe('a path tool racing the last connection\'s close()', () => {
  for (const tool of TOOLS) {
    it(`${tool.name}: resolves ok or rejects with its documented code; close() resolves; the database stays whole, unlocked, verify ok`, async () => {
      for (const when of WHEN) {
        const file = sqliteDatabase();
        const store = await storeWithFrames(file, tool.fec === true);
        const snap = tool.name === 'verifySnapshot' ? await store.snapshot() : null;
        let closing: Promise<void>[];
        let running: Promise<unknown>;
        if (when === 'before close(), same tick') {
          running = call(() => tool.run(file, snap));
          closing = [store.close()];
        } else if (when === 'after close(), same tick') {
          closing = [store.close()];
          running = call(() => tool.run(file, snap));
        } else if (when === 'after close() began (setImmediate)' || when === 'after close() began (1 ms)') {
          closing = [store.close()];
          await new Promise((resolve) => (when === 'after close() began (1 ms)' ? setTimeout(resolve, 1) : setImmediate(resolve)));
          running = call(() => tool.run(file, snap));
        } else {
          closing = [store.close()];
          running = call(() => tool.run(file, snap));
          closing.push(store.close());
          expect(closing[1], 'close() twice: the same promise').toBe(closing[0]);
        }
        const [r, ...closed] = await Promise.all([settle(running, `${tool.name} ${when}`), ...closing.map((c) => settle(c, `close() ${when}`))]);
        for (const c of closed) expect(c, `${when}: close()`).toEqual({ ok: true, value: undefined });
        if (r.ok) tool.check?.(r.value);
        else {
          expect(r.walnut, `${when}: ${r.message}`).toBe(true);
          expect(tool.codes, `${when}: ${r.code} ${r.message}`).toContain(r.code);
        }
        snap?.release();
        // the last connection's close removes the sidecar with the WAL (sqlite3 later would not)
        if (tool.fec) expect(fs.existsSync(`${file}-wal-fec`) && !fs.existsSync(`${file}-wal`), `${when}: a sidecar without its WAL`).toBe(false);
        expectWholeAndUnlocked(file);
        expect(await verify(file, 5), `${when}: verify afterwards`).toMatchObject({ ok: true, issues: [] });
      }
    });
  }
});

describe("createExportStream's Readable destroyed (its close) at every stage", () => {
  type Stage = 'same tick as created' | 'twice, same tick' | 'after setImmediate' | 'after 2 ms' | "from its 'caughtUp' listener" | 'after it ended';
  const STAGES: Stage[] = ['same tick as created', 'twice, same tick', 'after setImmediate', 'after 2 ms', "from its 'caughtUp' listener", 'after it ended'];
  for (const follow of [false, true]) {
    it(`${follow ? 'follow' : 'one-shot'}: 'close' comes, an 'error' is a WalnutError, the connection is gone (no -wal/-shm left, no lock: sqlite3 truncates), the database whole; beside a store's close() too`, async () => {
      for (const stage of STAGES) {
        if (follow && stage === 'after it ended') continue; // (a follow export never ends on its own)
        for (const beside of [false, true]) {
          const file = sqliteDatabase();
          const store = beside ? await storeWithFrames(file, false) : null;
          const stream = createExportStream(file, { follow, pollMs: 2 });
          const errors: unknown[] = [];
          stream.on('error', (e: unknown) => errors.push(e));
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          const closed = settle(new Promise((resolve) => stream.once('close', resolve)), `'close' (${stage})`);
          const storeClosing = store?.close();
          if (stage === 'same tick as created') stream.destroy();
          else if (stage === 'twice, same tick') {
            stream.destroy();
            stream.destroy();
          } else if (stage === 'after setImmediate') await new Promise((resolve) => setImmediate(() => resolve(stream.destroy())));
          else if (stage === 'after 2 ms') await new Promise((resolve) => setTimeout(() => resolve(stream.destroy()), 2));
          else if (stage === "from its 'caughtUp' listener") stream.once('caughtUp', () => stream.destroy());
          else await new Promise((resolve) => stream.once('end', resolve)).then(() => stream.destroy());
          expect(await closed, stage).toMatchObject({ ok: true });
          await storeClosing;
          for (const e of errors) expect(e, `${stage}: ${String(e)}`).toBeInstanceOf(WalnutError);
          // (two connections closing at once may both find the other still there and leave the
          // -wal and -shm, as two SQLite connections would: only the lone export is asked to remove them)
          if (!beside) expect(['-wal', '-shm'].filter((s) => fs.existsSync(file + s)), stage).toEqual([]);
          expectWholeAndUnlocked(file);
          expect(await verify(file, 5), stage).toMatchObject({ ok: true, issues: [] });
        }
      }
    });
  }
});
