// A long write through walnut/sql beside a python3 sqlite3 process that commits all the time.
// walnut/sql commits optimistically (conditional on the write's snapshot), so a statement or
// transaction that runs longer than the gap between the other process's commits was overtaken
// on every run: `INSERT INTO big SELECT` of 200,000 rows (about 0.1 s a run) failed
// WALNUT_CONFLICT after 57 runs in busyTimeout's 5 s, a VACUUM of 18 MB after 620. Now a write
// overtaken twice runs again holding the WAL write lock until it is durable (store
// holdWriteLease/releaseWriteLease, sql/overtaken-writes.ts), as SQLite's own writer holds its
// lock for a whole write; the other process waits in its busy handler and goes on after.
// Checked: the write commits, the other process's acknowledged commits are all there, it
// commits again after the write (the lease was given back), integrity_check ok.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { open } from '../../lib/index';
import { isWalnutError, openDatabase } from '../../lib/sql';
import { LEASE_AFTER_CONFLICTS } from '../../lib/sql/overtaken-writes';
import { expectWalnutError } from '../helpers/expect-error';
import { HELPERS, spawnOutput, startPython } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/**
 * How long the other writer runs unless stopped: past what a loaded machine needs for a test's
 * write to win while it still runs. That was asserted as the write taking under 4 s beside a
 * writer of 5 s, which a loaded machine (8x slower) failed though the write won as it should.
 */
const WRITER_SECONDS = 20;
const BIG_INSERT = 'WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200000) INSERT INTO big SELECT randomblob(20) FROM c';

/**
 * Starts sqlite-writer.py on `file` for WRITER_SECONDS (a pause of `pauseMs` after each commit)
 * and waits until its first commit shows; `done`: its commits; `running()`: its run has not
 * ended. `stop()` ends its run early (each test stops it once what it asserts of the writer has
 * happened: the rest of its time, there for a loaded machine, was most of these tests' time).
 */
async function foreignWriter(file: string, pauseMs = 0): Promise<{ done: Promise<number>; stop: () => void; running: () => boolean }> {
  const writer = startPython(path.join(HELPERS, 'sqlite-writer.py'), [file, String(WRITER_SECONDS), '7', '200', '0', '20', String(pauseMs)]);
  const done = writer.output.then((out) => Number(out.split('\n')[0]));
  let ended = false;
  void done.finally(() => (ended = true)).catch(() => undefined);
  for (let i = 0; i < 2000 && sqlite(file, 'SELECT count(*) FROM t') === '0'; i++) await sleep(5);
  return { done, stop: writer.stop, running: () => !ended }; // (not `done` itself: an async function's result would wait for it)
}

/** Waits until the writer has committed past `before` rows of its own (w = 7), or its run ended, then stops it; resolves with its commits. */
async function stopAfterItCommits(file: string, writer: { done: Promise<number>; stop: () => void; running: () => boolean }, before: number): Promise<number> {
  while (writer.running() && Number(sqlite(file, 'SELECT count(*) FROM t WHERE w = 7')) <= before) await sleep(10);
  writer.stop();
  return writer.done;
}

/**
 * The wait of a transaction's run between its read and its write: the first run waits until the
 * other writer (w = 7) has committed again, so that it is overtaken however slow the machine (with
 * only a sleep, a loaded machine's writer made no commit in it, the transaction never conflicted
 * and the test proved nothing: runs 1); later runs sleep `ms` (one holding the lease must not
 * wait for the writer, which then waits for it).
 */
async function overtakeFirstRun(file: string, run: number, ms: number): Promise<void> {
  if (run > 1) return sleep(ms);
  const writerRows = (): number => Number(sqlite(file, 'SELECT count(*) FROM t WHERE w = 7'));
  const seen = writerRows();
  await until(() => writerRows() > seen, 20_000);
}

test('an autocommit statement overtaken on every run commits under the write lease; the other writer waits, then goes on', async () => {
  const file = path.join(tmpDir(), 'long-autocommit.db');
  const db = await openDatabase(file, { busyTimeout: 2000 }); // (the other writer runs longer: it cannot be waited out)
  await db.exec('CREATE TABLE t(w INTEGER, v BLOB); CREATE TABLE big(x BLOB)');
  const writer = await foreignWriter(file);
  const result = await db.run(BIG_INSERT);
  expect(result.changes).toBe(200000);
  // it was overtaken (else this test proves nothing): twice (LEASE_AFTER_CONFLICTS), or once
  // where its first run used up busyTimeout (a loaded machine), then it ran under the lease
  expect(db.conflictRetries).toBeGreaterThanOrEqual(1);
  expect(db.leasedRetries).toBeGreaterThanOrEqual(1);
  const before = Number(sqlite(file, 'SELECT count(*) FROM t'));
  const made = await stopAfterItCommits(file, writer, before);
  // the lease was given back: the other process committed after the write
  expect(made).toBeGreaterThan(before);
  await db.close();
  expect(sqlite(file, 'SELECT count(*) FROM big')).toBe('200000');
  expect(Number(sqlite(file, 'SELECT count(*) FROM t'))).toBe(made);
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
}, 30000);

test('a transaction() the caller runs again after conflicts commits under the lease; a read-modify-write loses nothing', async () => {
  const file = path.join(tmpDir(), 'long-transaction.db');
  const db = await openDatabase(file, { busyTimeout: 2000 });
  await db.exec('CREATE TABLE t(w INTEGER, v BLOB); CREATE TABLE c(id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO c VALUES (1, 0)');
  const writer = await foreignWriter(file);
  let runs = 0;
  for (let committed = 0; committed < 3; ) {
    try {
      await db.transaction(async (tx) => {
        runs++;
        const { n } = (await tx.get('SELECT n FROM c WHERE id = 1')) as { n: number };
        await overtakeFirstRun(file, runs, 150); // longer than the gap between the other process's commits
        await tx.run('UPDATE c SET n = ? WHERE id = 1', [n + 1]);
        await tx.run('INSERT INTO t(w, v) VALUES (1, zeroblob(10))');
      });
      committed++;
    } catch (e) {
      if (!isWalnutError(e, 'WALNUT_CONFLICT')) throw e;
    }
  }
  const before = Number(sqlite(file, 'SELECT count(*) FROM t WHERE w = 7'));
  expect(writer.running(), 'won while the other writer still ran (not after it)').toBe(true);
  expect(runs).toBeGreaterThan(3); // overtaken at least once (else this test proves nothing)
  expect(db.leasedRetries).toBeGreaterThanOrEqual(1);
  const made = await stopAfterItCommits(file, writer, before);
  await db.close();
  expect(sqlite(file, 'SELECT n FROM c')).toBe('3');
  expect(made).toBeGreaterThan(before); // it committed after: the lease was given back
  expect(sqlite(file, 'SELECT count(*) FROM t WHERE w = 7')).toBe(String(made));
  expect(sqlite(file, 'SELECT count(*) FROM t WHERE w = 1')).toBe('3');
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
}, 30000);

test('a long transaction() retried among short ones that commit still gets the lease (counted per function text)', async () => {
  const file = path.join(tmpDir(), 'long-among-short.db');
  const db = await openDatabase(file, { busyTimeout: 2000 });
  await db.exec('CREATE TABLE t(w INTEGER, v BLOB); CREATE TABLE c(id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO c VALUES (1, 0), (2, 0)');
  // a commit every 20 ms or so: gaps the short transactions fit in, the long one (150 ms) never
  const writer = await foreignWriter(file, 20);
  let shortDone = 0;
  let longDone = false;
  // short transactions of this database commit all the while (each success reset a count kept per database)
  const shorts = Array.from({ length: 2 }, async () => {
    while (!longDone) {
      try {
        await db.transaction(async (tx) => void (await tx.run('UPDATE c SET n = n + 1 WHERE id = 2')));
        shortDone++;
      } catch (e) {
        if (!isWalnutError(e, 'WALNUT_CONFLICT')) throw e;
      }
      await sleep(5);
    }
  });
  let runs = 0;
  for (;;) {
    try {
      // a new closure for each try, as a retry loop makes it
      await db.transaction(async (tx) => {
        runs++;
        const { n } = (await tx.get('SELECT n FROM c WHERE id = 1')) as { n: number };
        await overtakeFirstRun(file, runs, 150);
        await tx.run('UPDATE c SET n = ? WHERE id = 1', [n + 1]);
      });
      break;
    } catch (e) {
      if (!isWalnutError(e, 'WALNUT_CONFLICT')) throw e;
    }
  }
  longDone = true;
  await Promise.all(shorts);
  expect(writer.running(), 'won while the other writer still ran').toBe(true);
  expect(runs).toBeGreaterThan(1); // overtaken (else this test proves nothing)
  expect(shortDone).toBeGreaterThan(0); // short ones committed in between (the case here)
  // its third run held the lease, or (a short one, overtaken twice too, held it then) one of the
  // next two: its claim keeps the less overtaken short ones back (5-9 runs with a count per database)
  expect(runs).toBeLessThanOrEqual(LEASE_AFTER_CONFLICTS + 3);
  writer.stop();
  const made = await writer.done;
  await db.close();
  expect(sqlite(file, 'SELECT n FROM c ORDER BY id')).toBe(`1\n${shortDone}`);
  expect(sqlite(file, 'SELECT count(*) FROM t WHERE w = 7')).toBe(String(made));
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
}, 30000);

test("exec('VACUUM') beside a writer that never pauses commits on its caller's first call (run again by walnut/sql, under the write lease) or its third at the latest (counted per SQL text)", async () => {
  const file = path.join(tmpDir(), 'vacuum-exec.db');
  const db = await openDatabase(file, { busyTimeout: 2000 });
  await db.exec('CREATE TABLE t(w INTEGER, v BLOB); CREATE TABLE big(x BLOB)');
  await db.run('WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 12000) INSERT INTO big SELECT randomblob(1000) FROM c');
  await db.run('DELETE FROM big WHERE rowid > 6000');
  expect(((await db.get('PRAGMA freelist_count')) as { freelist_count: number }).freelist_count).toBeGreaterThan(1000);
  const writer = await foreignWriter(file);
  let calls = 0;
  for (;;) {
    calls++;
    try {
      await db.exec('VACUUM');
      break;
    } catch (e) {
      if (!isWalnutError(e, 'WALNUT_CONFLICT')) throw e;
    }
  }
  expect(writer.running(), 'won while the other writer still ran').toBe(true);
  // overtaken (else this test proves nothing): its caller, or walnut/sql, ran it again
  expect(calls - 1 + db.conflictRetries).toBeGreaterThan(0);
  expect(calls).toBeLessThanOrEqual(LEASE_AFTER_CONFLICTS + 1);
  expect(db.leasedRetries).toBe(1);
  writer.stop();
  const made = await writer.done;
  await db.close();
  expect(sqlite(file, 'SELECT count(*) FROM big')).toBe('6000');
  expect(Number(sqlite(file, 'PRAGMA freelist_count'))).toBeLessThan(10); // VACUUM ran (the writer's inserts after it may free a few)
  expect(sqlite(file, 'SELECT count(*) FROM t WHERE w = 7')).toBe(String(made));
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
}, 30000);

test('store.releaseWriteLease(): counted holds, other connections commit again after the last, a batch in flight keeps WRITE until it is in', async () => {
  const file = path.join(tmpDir(), 'lease.db');
  sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE x(y)'); // (the pages committed below are not SQLite's: only the WAL's locks are tried)
  const store = await open(file, { pageSize: 4096, shareLane: false });
  try {
    expectWalnutError(() => store.releaseWriteLease(), 'WALNUT_INVALID_ARGUMENT', { reason: 'lease' });
    // a walnut store in another process, busy timeout 100 ms, stands for another connection's writer
    // (spawned without blocking this event loop: the committer here lets WRITE go in a later turn)
    const tryWrite = async (): Promise<string> => {
      const script = `
        const { open } = require(${JSON.stringify(path.resolve('dist/index.js'))});
        open(${JSON.stringify(file)}, { pageSize: 4096, busyTimeout: 100 }).then(async (s) => {
          try { await s.commit([{ pgno: 2, data: Buffer.alloc(4096, 1) }]); console.log('committed'); }
          catch (e) { console.log(e.code); }
          await s.close();
        });`;
      return (await spawnOutput(process.execPath, ['-e', script])).stdout.trim();
    };
    await store.holdWriteLease();
    await store.holdWriteLease();
    expect(await tryWrite()).toBe('WALNUT_BUSY');
    store.releaseWriteLease();
    expect(await tryWrite()).toBe('WALNUT_BUSY'); // one hold is left
    // the last release while a batch of this store's is being written: it finishes, then WRITE is free
    const inFlight = Array.from({ length: 32 }, (_, i) => store.commit([{ pgno: 3 + i, data: Buffer.alloc(4096, i) }]));
    store.releaseWriteLease();
    await Promise.all(inFlight);
    expect(await tryWrite()).toBe('committed');
    await store.holdWriteLease(); // taken again after it was given back
    expect(await tryWrite()).toBe('WALNUT_BUSY');
  } finally {
    await store.close();
  }
  store.releaseWriteLease(); // after close(): nothing (close let the lock go)
  const again = await open(file, { pageSize: 4096, busyTimeout: 1000 });
  await again.commit([{ pgno: 40, data: Buffer.alloc(4096, 9) }]);
  await again.close();
}, 30000);
