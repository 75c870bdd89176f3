// Commits and checkpoints waiting for WRITE held by another connection block in the kernel
// (wal-index.ts #lockShm: F_OFD_SETLKW on a thread of the addon's lock lane, one slice as long
// as the busy handler's sleep), so the kernel may hand such a wait the lock at any moment,
// including the moment its store goes away. Whatever the wait got must go with it: after each
// ending below, python3's sqlite3 takes WRITE with no busy timeout at all (BEGIN IMMEDIATE,
// timeout=0), where a lock left with a lock-lane thread would answer "database is locked" until
// the process exits. The endings:
//  - worker.terminate() of a worker whose store's commits and truncate checkpoint wait (the
//    holder lets go just before, just after, or not at all before the terminate);
//  - store.close() as the holder lets go (close cuts the commits' waits for WRITE: each one took
//    WRITE in the wait first and commits, or rejects WALNUT_CLOSED, reason WriteWaitCut);
//  - the holder SIGKILLed while eight stores of this process wait: every one commits;
//  - more stores waiting at once (80) than the lock lane has threads (64), with busy timeouts
//    0..500 ms, beside a sqlite3 writer that takes WRITE again at once: every call settles ok
//    or WALNUT_BUSY, and with all of them still open and idle sqlite3 takes WRITE at once.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

import { describe, expect, it } from 'vitest';

import { open, type Store } from '../../lib/commit/store';
import { holdWrite, startBusyWriter } from '../helpers/busy-writer';
import { HELPERS, pythonSqlite } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A WAL database of walnut's with table t (for the python3 writers), closed. */
async function newDatabase(): Promise<string> {
  const db = path.join(dir, `wait${n++}.db`);
  await pythonSqlite(db, "c.execute('PRAGMA journal_mode=WAL'); c.execute('CREATE TABLE t(w, v)')");
  return db;
}

/** sqlite3 takes WRITE at once (no busy timeout): 'ok', or its error. */
function sqliteTakesWrite(db: string): Promise<string> {
  return pythonSqlite(
    db,
    "d = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\ntry:\n  d.execute('BEGIN IMMEDIATE'); d.execute('ROLLBACK'); print('ok')\nexcept Exception as e:\n  print(e)\nd.close()",
  );
}

/** Raw pages far past t's, so the python3 writers' b-tree is never written over. */
const page = (store: Store, fill: number) => new Uint8Array(store.pageSize).fill(fill);

describe('a wait for WRITE blocked in the kernel, ended by its store going away', () => {
  for (const when of ['before', 'after', 'never'] as const) {
    it(`worker.terminate() (the holder lets go ${when === 'never' ? 'only after it' : `just ${when} it`}): no WRITE left behind`, async () => {
      const db = await newDatabase();
      const holder = await holdWrite(db, 'SELECT 1');
      const worker = new Worker(path.join(HELPERS, 'write-wait-worker.js'), { workerData: { db } });
      const first = await new Promise<unknown>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      expect(first).toBe('waiting');
      await sleep(150); // past the five quick tries: the waits block in the kernel
      if (when === 'before') holder.commit();
      const terminated = worker.terminate();
      if (when === 'after') holder.commit();
      await terminated;
      await holder.stop();
      expect(await sqliteTakesWrite(db)).toBe('ok');
    });
  }

  it('store.close() as the holder lets go: the waiting commits commit or are cut, no WRITE left behind', async () => {
    const db = await newDatabase();
    const holder = await holdWrite(db, 'SELECT 1');
    const store = await open(db, { busyTimeout: 5000, shareLane: false });
    const commits = [1000, 1001].map((pgno) => store.commit([{ pgno, data: page(store, 1) }]).then(() => 'ok', (e: { code?: string; reason?: string }) => `${e.code}/${e.reason}`));
    await sleep(150);
    holder.commit();
    await store.close();
    await holder.stop();
    // (one batch: both had WRITE, or neither)
    expect([['ok', 'ok'], Array(2).fill('WALNUT_CLOSED/WriteWaitCut')]).toContainEqual(await Promise.all(commits));
    expect(await sqliteTakesWrite(db)).toBe('ok');
  });

  it('the holder SIGKILLed while eight stores wait: every one commits', async () => {
    const db = await newDatabase();
    const holder = spawn('python3', [path.join(HELPERS, 'sqlite-hold-write.py'), db, 'SELECT 1'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise<void>((resolve) => holder.once('close', () => resolve()));
    await new Promise((resolve) => holder.stdout!.once('data', resolve));
    const stores = await Promise.all(Array.from({ length: 8 }, () => open(db, { busyTimeout: 5000, shareLane: false })));
    try {
      const commits = stores.map((s, i) => s.commit([{ pgno: 1000 + i, data: page(s, i + 1) }]).then(() => 'ok', (e: { code?: string }) => e.code));
      await sleep(150);
      holder.kill('SIGKILL');
      await exited;
      expect(await Promise.all(commits)).toEqual(Array(8).fill('ok'));
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
    expect(await sqliteTakesWrite(db)).toBe('ok');
  });

  it('80 stores (more than the lock lane has threads) with busy timeouts 0..500 ms beside a busy sqlite3 writer: all settle, none keeps WRITE', async () => {
    const db = await newDatabase();
    const writer = await startBusyWriter(db, 30);
    const busyTimeouts = [0, 1, 2, 5, 50, 500];
    const stores: Store[] = [];
    const outcomes = new Map<string, number>();
    try {
      for (let i = 0; stores.length < 80; i++) {
        // (an open beside that writer may itself fail busy with a short busy timeout: tried again)
        const s = await open(db, { busyTimeout: busyTimeouts[stores.length % busyTimeouts.length]!, shareLane: false, synchronous: 'off' }).catch((e: { code?: string }) => {
          if (e.code !== 'WALNUT_BUSY' || i > 2000) throw e;
          return null;
        });
        if (s !== null) stores.push(s);
      }
      const end = performance.now() + 1500;
      await Promise.all(
        stores.map(async (s, i) => {
          while (performance.now() < end) {
            const outcome = await s.commit([{ pgno: 1000 + i, data: page(s, i) }]).then(
              () => 'ok',
              (e: { code?: string }) => {
                if (s.chainBrokenBy !== null) s.resumeCommits(s.chainBrokenBy); // the next commit is tried on its own
                return e.code ?? String(e);
              },
            );
            outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
          }
        }),
      );
    } finally {
      await writer.stop();
    }
    try {
      console.log(`80 stores beside a busy sqlite3 writer: ${JSON.stringify(Object.fromEntries(outcomes))}`);
      expect([...outcomes.keys()].filter((k) => k !== 'ok' && k !== 'WALNUT_BUSY')).toEqual([]);
      expect(await sqliteTakesWrite(db)).toBe('ok'); // every store still open and idle
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
    expect(await sqliteTakesWrite(db)).toBe('ok');
  });
});
