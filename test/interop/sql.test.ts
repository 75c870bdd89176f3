// walnut/sql (issue #20): SQLite in wasm on a walnut store, group-committed; the files stay
// SQLite's WAL format, checked by the sqlite3 CLI and by a SQLite process writing beside it.
// Also the store API it needs: dataVersion() and trySnapshotSync()/snapshotSync().
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { describe, expect, test } from 'vitest';

import { open } from '../../lib/index';
import { isWalnutError, openDatabase, type Database, type Queryable } from '../../lib/sql';
import { HELPERS, holdLock, release, runJsonChild, runPython, SqlitePeer } from '../helpers/children';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

function cli(file: string, sql: string): string {
  return execFileSync('sqlite3', [file, sql], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

async function withPeer<T>(file: string, work: (peer: SqlitePeer) => Promise<T>): Promise<T> {
  const peer = new SqlitePeer(file);
  try {
    return await work(peer);
  } finally {
    await peer.close();
  }
}

/** Runs sql-fault-child.js (16 concurrent INSERTs meet an injected fault, then one more). */
async function sqlFault(scenario: string, calls: 'transaction' | 'autocommit' = 'transaction'): Promise<{ file: string; out: { acknowledged: number[]; errors: string[]; read: number | string; after: string | null } }> {
  const file = path.join(tmpDir(), `fault-${scenario}-${calls}.db`);
  return { file, out: await runJsonChild(path.join(HELPERS, 'sql-fault-child.js'), [file, scenario, calls], { WALNUT_FAULT_INJECTION: '1' }) };
}

describe('store API for SQL', () => {
  test('dataVersion() changes when another connection commits, not for the store\'s own commits', async () => {
    const file = path.join(tmpDir(), 'dv.db');
    const store = await open(file);
    try {
      const v0 = store.dataVersion();
      await store.commit([{ pgno: 2, data: Buffer.alloc(store.pageSize) }], { dbSize: 2 });
      expect(store.dataVersion()).toBe(v0);
      await withPeer(file, async (peer) => {
        await peer.exec('CREATE TABLE t(x)');
        const v1 = store.dataVersion();
        expect(v1).not.toBe(v0);
        expect(store.dataVersion()).toBe(v1); // reading again changes nothing
        await store.commit([{ pgno: 3, data: Buffer.alloc(store.pageSize) }], { dbSize: 3 });
        expect(store.dataVersion()).toBe(v1);
        await peer.exec('INSERT INTO t VALUES (1)');
        expect(store.dataVersion()).not.toBe(v1);
      });
    } finally {
      await store.close();
    }
  });

  test('trySnapshotSync() reads what snapshot() reads; null, and snapshotSync() WALNUT_BUSY, while every read slot is held', async () => {
    const file = path.join(tmpDir(), 'snap.db');
    const store = await open(file, { busyTimeout: 50, autoCheckpoint: false });
    try {
      const page = Buffer.alloc(store.pageSize, 7);
      await store.commit([{ pgno: 2, data: page }], { dbSize: 2 });
      const sync = store.trySnapshotSync()!;
      const async = await store.snapshot();
      expect(sync.dbSize).toBe(2);
      expect(sync.readSync(2).equals(page)).toBe(true);
      expect(sync.mxFrame).toBe(async.mxFrame);
      sync.release();
      async.release();
      await store.commit([{ pgno: 2, data: Buffer.alloc(store.pageSize, 8) }]); // a mark no slot has yet
      const holder = await holdLock(`${store.path}-shm`, 124, 4, 'exclusive'); // READ(1..4)
      try {
        expect(store.trySnapshotSync()).toBeNull();
        expectWalnutError(() => store.snapshotSync(), 'WALNUT_BUSY', { reason: 'BusyRead' });
      } finally {
        await release(holder);
      }
      const s = store.snapshotSync();
      expect(s.readSync(2)[0]).toBe(8);
      s.release();
    } finally {
      await store.close();
    }
  });
  test("snapshot.advance() follows the store's own commits, and its dataVersion is the one read with its header; a sqlite3 commit after the store's last one is not followed (advance() false)", async () => {
    const file = path.join(tmpDir(), 'follow.db');
    const store = await open(file, { autoCheckpoint: false }); // frames stay in the WAL: snapshots hold READ(i > 0)
    const page = (b: number): Buffer => Buffer.alloc(store.pageSize, b);
    try {
      await store.commit([{ pgno: 2, data: page(1) }], { dbSize: 2 });
      const s = store.trySnapshotSync()!;
      const v0 = store.dataVersion();
      expect(s.dataVersion).toBe(v0);
      try {
        // the store's own commits: followed, the data version unchanged
        await store.commit([{ pgno: 2, data: page(2) }]);
        expect(s.advance()).toBe(true);
        expect(s.readSync(2)[0]).toBe(2);
        expect(s.dataVersion).toBe(v0);
        // its own commit, then a sqlite3 commit over it: the live header is the store's own no more
        await store.commit([{ pgno: 2, data: page(3) }]);
        await withPeer(file, (peer) => peer.exec('CREATE TABLE t(x)')); // writes page 1 (the schema)
        expect(s.advance()).toBe(false); // (following its own header would hide the sqlite3 commit)
      } finally {
        s.release();
      }
      const v1 = store.dataVersion();
      expect(v1).not.toBe(v0);
      const s2 = store.trySnapshotSync()!;
      try {
        expect(s2.dataVersion).toBe(v1);
        expect(s2.readSync(1).includes('CREATE TABLE t(x)')).toBe(true);
      } finally {
        s2.release();
      }
    } finally {
      await store.close();
    }
  });
});

describe('walnut/sql', () => {
  test('64 concurrent callers inserting in transactions: every row after reopen, sqlite3 reads the live files (integrity ok)', async () => {
    const file = path.join(tmpDir(), 'many.db');
    const db = await openDatabase(file);
    await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, caller INTEGER, n INTEGER, v TEXT)');
    const insert = await db.prepare('INSERT INTO t(caller, n, v) VALUES (?, ?, ?)');
    await Promise.all(
      Array.from({ length: 64 }, async (_, caller) => {
        for (let n = 0; n < 5; n++) {
          await db.transaction(async (tx) => {
            await tx.run('INSERT INTO t(caller, n, v) VALUES (?, ?, ?)', [caller, n, 'a']);
            await tx.run('INSERT INTO t(caller, n, v) VALUES (:c, :n, :v)', { c: caller, n, v: 'b' });
          });
          await insert.run([caller, n, 'c']);
        }
      }),
    );
    expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: 64 * 5 * 3 });
    expect(cli(file, 'PRAGMA integrity_check; SELECT count(*) FROM t; PRAGMA journal_mode')).toBe(`ok\n${64 * 5 * 3}\nwal`);
    expect(db.store.metrics().commits).toBeGreaterThanOrEqual(64 * 5 * 2);
    await db.close();
    const again = await openDatabase(file);
    try {
      const rows = await again.all('SELECT caller, count(*) AS k FROM t GROUP BY caller');
      expect(rows).toHaveLength(64);
      expect(rows.every((r) => r.k === 15)).toBe(true);
    } finally {
      await again.close();
    }
    expect(cli(file, 'PRAGMA integrity_check; SELECT count(*) FROM t')).toBe(`ok\n${64 * 5 * 3}`);
  });

  test("a lone caller's commits skip the committer's gathering turn (store.sequence's alone); concurrent callers' still share batches", async () => {
    const file = path.join(tmpDir(), 'alone.db');
    const db = await openDatabase(file);
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
      const insert = await db.prepare('INSERT INTO t(v) VALUES (?)');
      const before = db.store.metrics().wakeReasons.alone;
      for (let i = 0; i < 20; i++) await insert.run(['one']);
      expect(db.store.metrics().wakeReasons.alone - before).toBeGreaterThan(0);
      // 16 calls made at once: the last one alone (nothing queued behind it), the others not
      const { commits, batches } = db.store.metrics();
      await Promise.all(Array.from({ length: 16 }, () => insert.run(['many'])));
      const m = db.store.metrics();
      expect(m.commits - commits).toBe(16);
      expect(m.batches - batches).toBeLessThan(16);
      expect(cli(file, "SELECT count(*) FROM t WHERE v = 'one'; SELECT count(*) FROM t WHERE v = 'many'")).toBe('20\n16');
    } finally {
      await db.close();
    }
  });

  test('rows, types and results as better-sqlite3 gives them; VACUUM shrinks the file', async () => {
    const file = path.join(tmpDir(), 'types.db');
    const db = await openDatabase(file, { safeIntegers: false });
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB, z)');
      const r = await db.run('INSERT INTO t(i, r, s, b, z) VALUES (?, ?, ?, ?, ?)', [2 ** 40, 1.5, 'x', Buffer.from([1, 2, 3]), null]);
      expect(r).toEqual({ changes: 1, lastInsertRowid: 1 });
      await db.run('INSERT INTO t(id, i) VALUES (?, ?)', [2n ** 40n, 9007199254740993n]);
      const row = await db.get('SELECT i, r, s, b, z FROM t WHERE id = 1');
      expect(row).toEqual({ i: 2 ** 40, r: 1.5, s: 'x', b: Buffer.from([1, 2, 3]), z: null });
      expect(await db.get('SELECT * FROM t WHERE id = ?', [12345])).toBeUndefined();
      const big = await openDatabase(path.join(tmpDir(), 'big.db'), { safeIntegers: true });
      try {
        await big.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, i INTEGER)');
        expect(await big.run('INSERT INTO t VALUES (?, ?)', [2n ** 40n, 9007199254740993n])).toEqual({ changes: 1, lastInsertRowid: 2n ** 40n });
        expect(await big.get('SELECT i FROM t')).toEqual({ i: 9007199254740993n });
      } finally {
        await big.close();
      }
      // VACUUM: the shrink happens after SQLite's sync; the commit point must come after it
      const blob = Buffer.alloc(3000, 1);
      await db.transaction(async (tx) => {
        for (let k = 0; k < 200; k++) await tx.run('INSERT INTO t(b) VALUES (?)', [blob]);
      });
      const large = Buffer.alloc(300_000, 9); // overflow pages
      large[12345] = 1;
      const { lastInsertRowid } = await db.run('INSERT INTO t(b) VALUES (?)', [large]);
      // (Buffer.equals: vitest's toEqual walks a 300 KB buffer element by element, 5 s of a blocked worker at load 20)
      expect(((await db.get('SELECT b FROM t WHERE id = ?', [lastInsertRowid]))!.b as Buffer).equals(large), 'the 300 KB blob read back').toBe(true);
      await db.run('DELETE FROM t WHERE id = ?', [lastInsertRowid]);
      const before = (await db.get('PRAGMA page_count'))!.page_count as number;
      await db.run('DELETE FROM t WHERE b = ?', [blob]);
      await db.exec('VACUUM');
      const after = (await db.get('PRAGMA page_count'))!.page_count as number;
      expect(after).toBeLessThan(before / 10);
      expect(cli(file, 'PRAGMA integrity_check; PRAGMA page_count; SELECT count(*) FROM t')).toBe(`ok\n${after}\n2`);
    } finally {
      await db.close();
    }
  });

  test('holdWriteLease: other processes read but cannot write; after close() they can', async () => {
    const file = path.join(tmpDir(), 'lease.db');
    await expectRejectsWalnut(openDatabase(file, { holdWriteLease: 'yes' as never }), 'WALNUT_INVALID_ARGUMENT', { reason: 'holdWriteLease' });
    // open()'s options are checked as open() checks them, inherited names too (Object.create(defaults)): the
    // rest spread handed open() only own names, a misspelt inherited one dropped
    await expectRejectsWalnut(openDatabase(file, Object.create({ busyTimout: 100 })), 'WALNUT_INVALID_ARGUMENT', { reason: 'busyTimout' });
    const db = await openDatabase(file, { holdWriteLease: true });
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
      await withPeer(file, async (peer) => {
        await peer.pragma('busy_timeout = 0');
        const writers = Promise.all(Array.from({ length: 16 }, (_, k) => db.run('INSERT INTO t(v) VALUES (?)', [`w${k}`])));
        await expect(peer.exec("INSERT INTO t(v) VALUES ('sqlite')")).rejects.toMatchObject({ code: 'SQLITE_BUSY' });
        await writers;
        expect(await peer.get('SELECT count(*) AS n FROM t')).toEqual({ n: 16 });
        expect(() => cli(file, "INSERT INTO t(v) VALUES ('cli')")).toThrow(/locked|busy/i);
        expect(cli(file, 'PRAGMA integrity_check; SELECT count(*) FROM t')).toBe('ok\n16');
      });
      // the store's own writers take turns under the lease: a TRUNCATE checkpoint, then commits
      expect(await db.store.checkpoint('truncate')).toMatchObject({ busy: false, walFrames: 0 });
      await db.run('INSERT INTO t(v) VALUES (?)', ['after truncate']);
      await db.run('DELETE FROM t WHERE v = ?', ['after truncate']);
    } finally {
      await db.close();
    }
    cli(file, "INSERT INTO t(v) VALUES ('cli')");
    expect(cli(file, 'PRAGMA integrity_check; SELECT count(*) FROM t')).toBe('ok\n17');
  });

  test('reads see the rows a sqlite3 process commits (the page cache is dropped on its commits)', async () => {
    const file = path.join(tmpDir(), 'peer.db');
    const db = await openDatabase(file);
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
      await db.run('INSERT INTO t(v) VALUES (?)', ['walnut']);
      expect(await db.all('SELECT v FROM t ORDER BY id')).toEqual([{ v: 'walnut' }]); // cached now
      await withPeer(file, async (peer) => {
        await peer.exec("INSERT INTO t(v) VALUES ('sqlite')"); // same leaf page; page 1 untouched
        expect(await db.all('SELECT v FROM t ORDER BY id')).toEqual([{ v: 'walnut' }, { v: 'sqlite' }]);
        await db.run('INSERT INTO t(v) VALUES (?)', ['walnut 2']);
        expect(await peer.all('SELECT v FROM t ORDER BY id')).toEqual([{ v: 'walnut' }, { v: 'sqlite' }, { v: 'walnut 2' }]);
      });
      expect(cli(file, 'PRAGMA integrity_check; SELECT count(*) FROM t')).toBe('ok\n3');
    } finally {
      await db.close();
    }
  });

  test("the writer sees page 1 as a sqlite3 commit left it right after its own commits (a schema change between two of its transactions, page 1 kept from its last commit)", async () => {
    const file = path.join(tmpDir(), 'page1.db');
    const db = await openDatabase(file);
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
      await withPeer(file, async (peer) => {
        for (let i = 0; i < 3; i++) {
          await db.run('INSERT INTO t(v) VALUES (?)', [`walnut ${i}`]); // page 1 written: kept for the next transaction
          await peer.exec(`CREATE TABLE u${i}(x); INSERT INTO u${i} VALUES (${i})`); // page 1 changed by sqlite3
          // on the writer connection (a transaction): reads page 1 for SQLite's schema check first
          expect(await db.transaction(async (tx) => tx.get(`SELECT x FROM u${i}`))).toEqual({ x: i });
        }
      });
      expect(cli(file, 'PRAGMA integrity_check; SELECT count(*) FROM t')).toBe('ok\n3');
    } finally {
      await db.close();
    }
  });

  test('a transaction that a sqlite3 commit overtakes fails WALNUT_CONFLICT and leaves that commit intact; a retry succeeds', async () => {
    const file = path.join(tmpDir(), 'race.db');
    const db = await openDatabase(file);
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
      await db.run('INSERT INTO t(v) VALUES (?)', ['first']);
      await withPeer(file, async (peer) => {
        const tx = db.transaction(async (t) => {
          await t.run('INSERT INTO t(v) VALUES (?)', ['walnut']); // same leaf page as the peer's row
          await peer.exec("INSERT INTO t(v) VALUES ('sqlite')"); // commits while the transaction is open
        });
        const err = await expectRejectsWalnut(tx, 'WALNUT_CONFLICT');
        expect(err.sqliteCode).toBe(5); // SQLITE_BUSY
        expect(await db.all('SELECT v FROM t ORDER BY id')).toEqual([{ v: 'first' }, { v: 'sqlite' }]);
        await db.transaction(async (t) => void (await t.run('INSERT INTO t(v) VALUES (?)', ['walnut'])));
        // an autocommit statement on a stale cache: not a conflict, the statement's own view is fresh
        await peer.exec("INSERT INTO t(v) VALUES ('sqlite 2')");
        await db.run('INSERT INTO t(v) VALUES (?)', ['walnut 2']);
        expect(await peer.all('SELECT v FROM t ORDER BY id')).toEqual([{ v: 'first' }, { v: 'sqlite' }, { v: 'walnut' }, { v: 'sqlite 2' }, { v: 'walnut 2' }]);
      });
      expect(cli(file, 'PRAGMA integrity_check')).toBe('ok');
    } finally {
      await db.close();
    }
  });

  test('a transaction opened after a sqlite3 commit, while an earlier transaction of its own is still in flight, never sees the two mixed (it waits for that one to settle)', async () => {
    const file = path.join(tmpDir(), 'mixed.db');
    // two rows of ~3 KB: each on its own leaf page
    cli(file, "PRAGMA journal_mode=WAL; CREATE TABLE c(id INTEGER PRIMARY KEY, tag TEXT, pad BLOB); INSERT INTO c VALUES (1, '0', zeroblob(3000)), (2, '0', zeroblob(3000));");
    // A waits up to a second in the group committer (no WRITE taken yet): the sqlite3 process commits meanwhile
    const db = await openDatabase(file, { groupCommit: { maxWaitMicros: 1_000_000 } });
    try {
      await withPeer(file, async (peer) => {
        await peer.ready;
        const a = db.run("UPDATE c SET tag = 'A' WHERE id = 1").then(() => 'ok', (e: unknown) => (isWalnutError(e) ? e.code : String(e)));
        await db.prepare('SELECT 1'); // the writer ran A: sequenced, in flight
        await peer.exec("UPDATE c SET tag = 'P' WHERE id = 2");
        let seen: unknown = null;
        const b = await db
          .transaction(async (tx) => {
            seen = await tx.all('SELECT id, tag FROM c ORDER BY id');
          })
          .then(() => 'ok', (e: unknown) => (isWalnutError(e) ? `${e.code} ${e.message}` : String(e)));
        // A's page of row 1 over the snapshot holding the sqlite3 commit: a state that never existed
        expect(seen).not.toEqual([{ id: 1, tag: 'A' }, { id: 2, tag: 'P' }]);
        expect(b).toBe('ok');
        expect(seen).toEqual([{ id: 1, tag: '0' }, { id: 2, tag: 'P' }]);
        // built on the state before the sqlite3 commit: a conflict, and (autocommit) run again on the new one
        expect(await a).toBe('ok');
        expect(db.conflictRetries).toBe(1);
      });
      expect(await db.all('SELECT id, tag FROM c ORDER BY id')).toEqual([{ id: 1, tag: 'A' }, { id: 2, tag: 'P' }]);
    } finally {
      await db.close();
    }
    expect(cli(file, 'PRAGMA integrity_check')).toBe('ok');
  });

  test('after k transactions are lost to a sqlite3 commit, SQLite drops the pages they left in its cache (a data version bump of 1 kept them when k = 2: a lost update)', async () => {
    const file = path.join(tmpDir(), 'lost-cache.db');
    const db = await openDatabase(file);
    const peer = new SqlitePeer(file);
    try {
      await db.exec('CREATE TABLE c(id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO c VALUES (1, 0)');
      const increment = (tx: Queryable): Promise<unknown> => tx.run('UPDATE c SET n = n + 1 WHERE id = 1');
      // transactions (their callers see the conflict), then autocommit statements (run again by walnut/sql)
      for (const [round, lose] of [
        ['transactions', () => db.transaction(increment)],
        ['autocommit', () => increment(db)],
      ] as const) {
        await peer.exec('BEGIN IMMEDIATE'); // holds the write lock: walnut's batch waits for it
        const before = db.store.lastTicket;
        const lost = [lose(), lose()].map((p) => p.catch((e: unknown) => e));
        while (db.store.lastTicket < before + 2) await new Promise((resolve) => setTimeout(resolve, 1)); // both sequenced (n + 2 in the cache)
        await peer.exec('UPDATE c SET n = n + 1 WHERE id = 1; COMMIT'); // built on n: one commit by another connection
        const [first, second] = await Promise.all(lost);
        if (round === 'transactions') {
          expect(first).toMatchObject({ code: 'WALNUT_CONFLICT', reason: 'OtherWriter' });
          expect(second).toMatchObject({ code: 'WALNUT_CONFLICT', reason: 'ChainBroken' });
          expect(db.conflictRetries).toBe(0);
          for (let i = 0; i < 2; i++) await db.transaction(increment); // the two, retried by their caller
          expect(await db.get('SELECT n FROM c WHERE id = 1')).toEqual({ n: 3 });
        } else {
          // both ran again on the sqlite3 commit: a stale cache would make n 4 (or 6: applied twice)
          expect([first, second]).toEqual([{ changes: 1, lastInsertRowid: 1 }, { changes: 1, lastInsertRowid: 1 }]);
          expect(db.conflictRetries).toBe(2);
          expect(await db.get('SELECT n FROM c WHERE id = 1')).toEqual({ n: 6 });
        }
      }
    } finally {
      await peer.close();
      await db.close();
    }
    expect(cli(file, 'SELECT n FROM c; PRAGMA integrity_check')).toBe('6\nok');
  });

  test("a sqlite3 commit between two transactions of a lone caller is seen by the next one: no stale page cache, no lost update (the writer's kept snapshot is not advanced past it)", async () => {
    const file = path.join(tmpDir(), 'between.db');
    const db = await openDatabase(file);
    // sqlite3 in WAL mode leaves page 1 alone here (the counter's row is on page 2 and no
    // schema changes): only the VFS's data version tells SQLite in wasm to drop its cache
    const sqlite3 = (timeout: number): boolean => {
      try {
        execFileSync('sqlite3', ['-cmd', `.timeout ${timeout}`, file, 'UPDATE c SET n = n + 1 WHERE id = 1'], { stdio: ['ignore', 'pipe', 'pipe'] });
        return true;
      } catch (e) {
        if (!/locked|busy/.test(String((e as { stderr?: unknown }).stderr))) throw e;
        return false;
      }
    };
    try {
      await db.exec('CREATE TABLE c(id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO c VALUES (1, 0)');
      const insert = await db.prepare('UPDATE c SET n = n + 1 WHERE id = 1');
      let n = 0;
      let between = 0;
      for (let round = 0; round < 200 && between < 5; round++) {
        // a sqlite3 commit with walnut idle (WRITE free: waited for), so that the writer's next
        // batch lets WRITE go at once (another writer is active) ...
        await new Promise((resolve) => setImmediate(resolve));
        if (sqlite3(5000)) n++;
        await insert.run([]); // (autocommit: the view's data version is checked at the lock of its own run)
        n++;
        // ... and one right after the lone caller's transaction settled, in the same turn of the
        // event loop (the JS thread waits for the process): the writer's snapshot is still kept
        // for its next transaction, which must not follow its own last commit past this one.
        // A few microtasks first: the committer's batch lets WRITE go in one of them (another
        // writer is active), the kept snapshot goes only at the next turn. Busy when the writer
        // still held WRITE: then no commit between, and the round goes on.
        for (let i = 0; i < 10; i++) await null;
        if (sqlite3(0)) {
          n++;
          between++;
        }
        await db.transaction(async (tx) => {
          // read-modify-write: a stale cache would write back n - 1 + 1 (a lost update)
          const { n: seen } = (await tx.get('SELECT n FROM c WHERE id = 1')) as { n: number };
          expect(seen).toBe(n);
          await tx.run('UPDATE c SET n = ? WHERE id = 1', [seen + 1]);
        });
        n++;
        expect(await db.get('SELECT n FROM c WHERE id = 1')).toEqual({ n });
      }
      console.log(`sqlite3 commits between two walnut/sql transactions in the same turn: ${between}`);
      expect(between).toBeGreaterThan(0);
      expect(cli(file, 'SELECT n FROM c; PRAGMA integrity_check')).toBe(`${n}\nok`);
    } finally {
      await db.close();
    }
  });

  // one autocommit statement, one synchronous run of ~0.1 s: SHARED and RESERVED at its start,
  // the counter read, a recursive count, the write, EXCLUSIVE and the commit at its end
  const SLOW_INCREMENT = 'UPDATE c SET n = n + 1 + (WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 100000) SELECT count(*) - 100000 FROM r) WHERE id = ?';
  test.each([
    ['walnut/sql runs it again (busyTimeout 5000): the caller sees no conflict', 5000],
    ['past busyTimeout (1 ms, shorter than the statement) the caller gets WALNUT_CONFLICT after one more run (under the write lease when it was had)', 1],
  ])('an autocommit statement that a sqlite3 commit overtakes within its own synchronous run (its locks taken in that run, unchecked) conflicts at its commit; %s; no lost update, none applied twice', async (_, busyTimeout) => {
    const file = path.join(tmpDir(), 'in-run.db');
    const COUNTERS = 2;
    const db = await openDatabase(file, { busyTimeout });
    try {
      await db.exec('CREATE TABLE c(id INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
      for (let id = 1; id <= COUNTERS; id++) await db.run('INSERT INTO c VALUES (?, 0)', [id]);
      const walnut = new Array<number>(COUNTERS + 1).fill(0);
      // refused at the commit's last check, SQLite backing the statement out (SQLITE_BUSY), or
      // by the store's conditional commit (a sqlite3 commit after that check: no SQLite code);
      // busy: the 1 ms busy timeout ran out while a sqlite3 transaction held WRITE
      const surfaced = { atCommit: 0, byStore: 0, busy: 0 };
      const peer = runPython(path.join(HELPERS, 'sqlite-counter.py'), [file, '300', String(COUNTERS)]);
      let peerDone = false;
      void peer.finally(() => (peerDone = true));
      let calls = 0;
      for (let i = 0; !peerDone || i < 3; i++) {
        const id = 1 + (i % COUNTERS);
        calls++;
        try {
          await db.run(SLOW_INCREMENT, [id]);
          walnut[id]!++;
        } catch (e) {
          if (busyTimeout === 1 && isWalnutError(e, 'WALNUT_BUSY')) surfaced.busy++;
          else if (busyTimeout === 1 && isWalnutError(e, 'WALNUT_CONFLICT')) surfaced[e.sqliteCode === 5 ? 'atCommit' : 'byStore']++;
          else throw e;
        }
      }
      const out = JSON.parse(await peer) as { acked: Record<string, number>; busy: number };
      for (const { id, n } of (await db.all('SELECT id, n FROM c ORDER BY id')) as { id: number; n: number }[]) {
        expect(n, `counter ${id}`).toBe(walnut[id]! + out.acked[String(id)]!);
      }
      console.log(`busyTimeout ${busyTimeout}: retried ${db.conflictRetries}, surfaced ${JSON.stringify(surfaced)}; walnut/sql ${walnut.reduce((a, b) => a + b, 0)}, sqlite3 ${Object.values(out.acked).reduce((a, b) => a + b, 0)} (busy ${out.busy})`);
      // the sqlite3 process did overtake some
      if (busyTimeout === 1) {
        expect(surfaced.atCommit + surfaced.byStore + db.leasedRetries).toBeGreaterThan(0);
        // its time up at its first conflict, each call runs once more at most (its last chance,
        // sql/overtaken-writes.ts), never again and again
        expect(db.conflictRetries).toBeLessThanOrEqual(calls);
      } else {
        expect(db.conflictRetries).toBeGreaterThan(0);
      }
      expect(cli(file, 'PRAGMA integrity_check')).toBe('ok');
    } finally {
      await db.close();
    }
  });

  test('16 callers incrementing counters with autocommit statements while a sqlite3 process increments the same counters: no caller sees a conflict (run again), no lost update, none applied twice; inside a BEGIN opened through exec() the conflict is the caller\'s', async () => {
    const file = path.join(tmpDir(), 'autocommit-counters.db');
    const COUNTERS = 4;
    const db = await openDatabase(file);
    try {
      await db.exec('CREATE TABLE c(id INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
      for (let id = 1; id <= COUNTERS; id++) await db.run('INSERT INTO c VALUES (?, 0)', [id]);
      const walnut = new Array<number>(COUNTERS + 1).fill(0);
      const increment = await db.prepare('UPDATE c SET n = n + 1 WHERE id = ?');
      const peer = runPython(path.join(HELPERS, 'sqlite-counter.py'), [file, '200', String(COUNTERS)]);
      let peerDone = false;
      void peer.finally(() => (peerDone = true));
      // the callers start once the sqlite3 process committed: walnut/sql then shares WRITE with
      // it (README, the WRITE lock); a busy handler's first try could otherwise meet WRITE held
      while (((await db.get('SELECT sum(n) AS s FROM c')) as { s: number }).s === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      await Promise.all(
        Array.from({ length: 16 }, async (_, k) => {
          for (let i = 0; !peerDone || i < 10; i++) {
            const id = 1 + ((k + i) % COUNTERS);
            expect((await increment.run([id])).changes).toBe(1); // any error fails the test
            walnut[id]!++;
          }
        }),
      );
      const out = JSON.parse(await peer) as { acked: Record<string, number>; busy: number };
      const rows = (await db.all('SELECT id, n FROM c ORDER BY id')) as { id: number; n: number }[];
      for (const { id, n } of rows) expect(n, `counter ${id}`).toBe(walnut[id]! + out.acked[String(id)]!);
      console.log(`autocommit counters: walnut/sql ${walnut.reduce((a, b) => a + b, 0)}, sqlite3 ${Object.values(out.acked).reduce((a, b) => a + b, 0)} (busy ${out.busy}), run again ${db.conflictRetries}`);
      expect(Object.values(out.acked).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);

      // a statement inside a transaction the caller opened with exec('BEGIN') is not run again:
      // the transaction's earlier statements would be lost with it
      await withPeer(file, async (other) => {
        await db.exec('BEGIN');
        await db.run('UPDATE c SET n = n + 100 WHERE id = 1');
        await other.exec('UPDATE c SET n = n + 1 WHERE id = 2'); // commits while the BEGIN is open
        const retries = db.conflictRetries;
        await expectRejectsWalnut(db.exec('COMMIT'), 'WALNUT_CONFLICT');
        expect(db.conflictRetries).toBe(retries);
        await db.exec('ROLLBACK').catch(() => undefined); // (SQLite may have rolled it back already)
        await db.exec('BEGIN');
        await db.run('SELECT n FROM c WHERE id = 1'); // the transaction's snapshot (run: on the writer; get would read on a read connection)
        await other.exec('UPDATE c SET n = n + 1 WHERE id = 2');
        await expectRejectsWalnut(db.run('UPDATE c SET n = n + 100 WHERE id = 1'), 'WALNUT_CONFLICT'); // its first write: stale
        expect(db.conflictRetries).toBe(retries);
        await db.exec('ROLLBACK').catch(() => undefined);
      });
      const after = (await db.all('SELECT id, n FROM c ORDER BY id')) as { id: number; n: number }[];
      expect(after.map((r) => r.n)).toEqual(rows.map((r) => r.n + (r.id === 2 ? 2 : 0)));
      expect(cli(file, 'PRAGMA integrity_check')).toBe('ok');
    } finally {
      await db.close();
    }
  });

  test('16 callers incrementing counters (read-modify-write, retried on WALNUT_CONFLICT) while a sqlite3 process increments the same counters: no lost update, integrity ok', async () => {
    const file = path.join(tmpDir(), 'counters.db');
    const COUNTERS = 4;
    const db = await openDatabase(file, { holdWriteLease: false }); // the default, said out loud
    try {
      await db.exec('CREATE TABLE c(id INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
      for (let id = 1; id <= COUNTERS; id++) await db.run('INSERT INTO c VALUES (?, 0)', [id]);
      const walnut = new Array<number>(COUNTERS + 1).fill(0);
      const conflicts = { OtherWriter: 0, ChainBroken: 0 };
      // 80 increments: the sqlite3 process gets WRITE only in the gaps its busy handler happens
      // to meet between the 16 callers' commits, a few a second (200 took 3.7 to 99 s, and the
      // callers go on until it is done); each one still lands between theirs
      const peer = runPython(path.join(HELPERS, 'sqlite-counter.py'), [file, '80', String(COUNTERS)]);
      let peerDone = false;
      void peer.finally(() => (peerDone = true));
      // the callers contend with it for at most 5 s: beside them it gets WRITE a few times a
      // second at best (README: a `sqlite3` writer polls for WRITE with its busy handler), and a run that
      // went on until it was done took up to 99 s (50 s for 80 increments in a CI run, five of
      // them past its 10 s busy timeout); it makes the rest alone
      const contendUntil = Date.now() + 5000;
      const caller = async (k: number): Promise<void> => {
        // until the sqlite3 process is done or 5 s have passed, and at least 10 increments each
        for (let i = 0; (!peerDone && Date.now() < contendUntil) || i < 10; i++) {
          const id = 1 + ((k + i) % COUNTERS);
          for (;;) {
            try {
              await db.transaction(async (tx) => {
                const { n } = (await tx.get('SELECT n FROM c WHERE id = ?', [id])) as { n: number };
                await tx.run('UPDATE c SET n = ? WHERE id = ?', [n + 1, id]);
              });
              walnut[id]!++;
              break;
            } catch (e) {
              if (!isWalnutError(e, 'WALNUT_CONFLICT')) throw e;
              conflicts[e.reason as keyof typeof conflicts]++;
            }
          }
        }
      };
      await Promise.all(Array.from({ length: 16 }, (_, k) => caller(k)));
      const out = JSON.parse(await peer) as { acked: Record<string, number>; busy: number };
      const rows = (await db.all('SELECT id, n FROM c ORDER BY id')) as { id: number; n: number }[];
      for (const { id, n } of rows) expect(n, `counter ${id}`).toBe(walnut[id]! + out.acked[String(id)]!);
      const sqliteIncrements = Object.values(out.acked).reduce((a, b) => a + b, 0);
      expect(sqliteIncrements).toBeGreaterThan(0); // the sqlite3 process did write beside walnut/sql
      console.log(`counters: walnut/sql ${walnut.reduce((a, b) => a + b, 0)}, sqlite3 ${sqliteIncrements} (busy ${out.busy}), conflicts ${JSON.stringify(conflicts)}`);
      expect(cli(file, 'PRAGMA integrity_check')).toBe('ok');
    } finally {
      await db.close();
    }
    expect(cli(file, 'PRAGMA integrity_check')).toBe('ok');
  });

  test('bad input: WalnutError with SQLite\'s code, parameters checked, transactions scoped', async () => {
    const file = path.join(tmpDir(), 'bad.db');
    // a safeIntegers that is not a boolean (1, 'yes') gave numbers: integers past 2^53 lost precision silently
    for (const v of [1, 'yes', null]) await expectRejectsWalnut(openDatabase(file, { safeIntegers: v as never }), 'WALNUT_INVALID_ARGUMENT', { reason: 'safeIntegers' });
    const db = await openDatabase(file);
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE)');
      await expectRejectsWalnut(db.run('SELEC 1'), 'WALNUT_SQL', { sqliteCode: 1 });
      await expectRejectsWalnut(db.prepare('SELECT * FROM nowhere'), 'WALNUT_SQL', { sqliteCode: 1 });
      await db.run('INSERT INTO t(v) VALUES (?)', ['a']);
      const dup = await expectRejectsWalnut(db.run('INSERT INTO t(v) VALUES (?)', ['a']), 'WALNUT_SQL');
      expect(dup.sqliteCode! & 0xff).toBe(19); // SQLITE_CONSTRAINT
      await expectRejectsWalnut(db.run('INSERT INTO t(v) VALUES (?)', []), 'WALNUT_INVALID_ARGUMENT', { reason: 'params' });
      await expectRejectsWalnut(db.run('INSERT INTO t(v) VALUES (?)', ['x', 'y']), 'WALNUT_INVALID_ARGUMENT', { reason: 'params' });
      await expectRejectsWalnut(db.run('INSERT INTO t(v) VALUES (?)', [{}] as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'params' });
      await expectRejectsWalnut(db.run('INSERT INTO t(v) VALUES (?)', [undefined] as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'params' });
      await expectRejectsWalnut(db.run('INSERT INTO t(v) VALUES (:v)', { w: 1 }), 'WALNUT_INVALID_ARGUMENT', { reason: 'params' });
      await expectRejectsWalnut(db.run('INSERT INTO t(id) VALUES (?)', [2n ** 63n]), 'WALNUT_INVALID_ARGUMENT', { reason: 'params' });
      await expectRejectsWalnut(db.run('SELECT 1; SELECT 2'), 'WALNUT_INVALID_ARGUMENT', { reason: 'sql' });
      await expectRejectsWalnut(db.run(42 as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'sql' });
      // what this first cut refuses, leaving the database usable: other database files, another page size
      const other = path.join(path.dirname(file), 'other.db');
      await expectRejectsWalnut(db.exec(`ATTACH '${other}' AS o`), 'WALNUT_CANTOPEN', { sqliteCode: 14 });
      await expectRejectsWalnut(db.exec(`VACUUM INTO '${other}'`), 'WALNUT_CANTOPEN', { sqliteCode: 14 });
      // its own file named again: said "opens only its own database (X), not X"
      for (const sql of [`ATTACH '${db.path}' AS again`, `VACUUM INTO '${db.path}'`]) {
        const own = await expectRejectsWalnut(db.exec(sql), 'WALNUT_CANTOPEN', { sqliteCode: 14, reason: 'attach' });
        expect(own.message, sql).toMatch(/not a second time \(.* is its own database/);
      }
      await expectRejectsWalnut(db.exec('PRAGMA page_size = 8192; VACUUM'), 'WALNUT_INVALID_ARGUMENT', { reason: 'page_size' });
      expect(await db.all('SELECT v FROM t')).toEqual([{ v: 'a' }]);
      // a transaction that throws rolls back; its tx is dead afterwards; db's own verbs refuse inside
      let kept: { run(sql: string): Promise<unknown> } | null = null;
      const boom = new Error('boom');
      await expect(
        db.transaction(async (tx) => {
          kept = tx;
          await tx.run("INSERT INTO t(v) VALUES ('rolled back')");
          await expectRejectsWalnut(db.run('SELECT 1'), 'WALNUT_INVALID_ARGUMENT', { reason: 'transaction' });
          await expectRejectsWalnut(tx.run('SELEC'), 'WALNUT_SQL', { sqliteCode: 1 });
          throw boom;
        }),
      ).rejects.toBe(boom);
      await expectRejectsWalnut(kept!.run('SELECT 1'), 'WALNUT_INVALID_ARGUMENT', { reason: 'transaction' });
      expect(await db.all('SELECT v FROM t')).toEqual([{ v: 'a' }]);
      await expectRejectsWalnut(db.transaction(42 as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'fn' });
      // close racing queries: the calls made before close() finish, later ones are refused
      const before = Array.from({ length: 20 }, (_, k) => db.run('INSERT INTO t(v) VALUES (?)', [`r${k}`]));
      const closing = db.close();
      const after = expectRejectsWalnut(db.get('SELECT 1'), 'WALNUT_CLOSED');
      await Promise.all(before);
      await closing;
      await after;
      await expectRejectsWalnut(db.all('SELECT 1'), 'WALNUT_CLOSED');
      await expectRejectsWalnut(db.transaction(async () => 1), 'WALNUT_CLOSED');
      await db.close(); // twice: fine
      expect(cli(file, 'PRAGMA integrity_check; SELECT count(*) FROM t')).toBe('ok\n21');
    } finally {
      await db.close();
    }
  });

  test("db's own verbs refuse inside a running transaction's fn only: a callback fn scheduled runs them once the transaction ended, and calls after a transaction run as before", async () => {
    const file = path.join(tmpDir(), 'tx-scope.db');
    const db = await openDatabase(file);
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
      let later: Promise<unknown> | null = null;
      await db.transaction(async (tx) => {
        await tx.run("INSERT INTO t(v) VALUES ('in')");
        await expectRejectsWalnut(db.run('SELECT 1'), 'WALNUT_INVALID_ARGUMENT', { reason: 'transaction' });
        // runs after the transaction committed: nothing to wait for (it was refused as inside fn)
        later = new Promise((resolve) => setTimeout(resolve, 20)).then(() => db.run("INSERT INTO t(v) VALUES ('after')"));
      });
      await expect(later!).resolves.toMatchObject({ changes: 1 });
      expect(await db.all('SELECT v FROM t ORDER BY id')).toEqual([{ v: 'in' }, { v: 'after' }]);
      // a second transaction is scoped as the first
      await db.transaction(async () => {
        await expectRejectsWalnut(db.get('SELECT 1'), 'WALNUT_INVALID_ARGUMENT', { reason: 'transaction' });
      });
      await db.run("INSERT INTO t(v) VALUES ('again')");
      expect((await db.get('SELECT count(*) AS n FROM t'))!.n).toBe(3);
    } finally {
      await db.close();
    }
  });

  test('a transaction past option maxPageCount fails alone with SQLite\'s SQLITE_FULL: the database goes on, the refused rows are nowhere', async () => {
    const file = path.join(tmpDir(), 'max-pages.db');
    const db = await openDatabase(file, { maxPageCount: 12 });
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, pad BLOB)');
      let acknowledged = 0;
      let refused: unknown = null;
      for (let i = 0; i < 20 && refused === null; i++) {
        await db.run('INSERT INTO t(pad) VALUES (zeroblob(3000))').then(() => acknowledged++, (e: unknown) => (refused = e));
      }
      expect(isWalnutError(refused, 'WALNUT_SQL')).toBe(true);
      expect((refused as { sqliteCode?: number }).sqliteCode).toBe(13); // SQLITE_FULL, as SQLite's own max_page_count gives
      // the next calls run (it failed the whole database before: every later read and write got the same refusal)
      expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: acknowledged });
      await db.run('DELETE FROM t WHERE id > 2');
      await db.run('INSERT INTO t(pad) VALUES (zeroblob(10))');
      expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: 3 });
    } finally {
      await db.close();
    }
    expect(cli(file, 'PRAGMA integrity_check; SELECT count(*) FROM t')).toBe('ok\n3');
  });

  test('an injected write error (ENOSPC) fails the transaction it hits and every one built on it; nothing else is acknowledged or present; the database recovers by itself', async () => {
    const { file, out } = await sqlFault('writeENOSPC');
    expect(out.errors[0]).toBe('WALNUT_FULL');
    // the transactions sequenced after the failed one were built on it: retryable conflicts
    expect(out.errors.slice(1).length).toBeGreaterThan(0);
    expect(out.errors.slice(1).every((c) => c === 'WALNUT_CONFLICT/ChainBroken')).toBe(true);
    expect(out.read).toBe(out.acknowledged.length); // the pipeline recovered: reads and later calls go
    expect(out.after).toBeNull();
    expect(cli(file, 'PRAGMA integrity_check')).toBe('ok');
    const present = cli(file, 'SELECT v FROM t ORDER BY v').split('\n').map(Number);
    expect(present).toEqual([...out.acknowledged, 99].sort((a, b) => a - b)); // exactly the acknowledged rows
  });

  test('an injected write error (ENOSPC) under autocommit statements: the one it hits fails, those built on it run again by themselves (acknowledged); exactly the acknowledged rows are present', async () => {
    const { file, out } = await sqlFault('writeENOSPC', 'autocommit');
    expect(out.errors).toEqual(['WALNUT_FULL']);
    expect(out.acknowledged.length).toBe(1 + 15); // the row before the fault, and the 15 not hit
    expect(out.read).toBe(out.acknowledged.length);
    expect(out.after).toBeNull();
    expect(cli(file, 'PRAGMA integrity_check')).toBe('ok');
    const present = cli(file, 'SELECT v FROM t ORDER BY v').split('\n').map(Number);
    expect(present).toEqual([...out.acknowledged, 99].sort((a, b) => a - b));
  });

  test('an fsync error (EIO): the transactions it hits reject, every acknowledged row survives, later calls are refused (the store stopped)', async () => {
    const { file, out } = await sqlFault('fsyncEIO');
    expect(out.errors.length).toBeGreaterThan(0);
    expect(out.errors.every((c) => c === 'WALNUT_FAILED')).toBe(true);
    expect(out.after).toBe('WALNUT_FAILED');
    expect(cli(file, 'PRAGMA integrity_check')).toBe('ok');
    const present = cli(file, 'SELECT v FROM t ORDER BY v').split('\n').map(Number);
    for (const v of out.acknowledged) expect(present).toContain(v);
  });

  test('a WAL of 16,000+ frames (4+ -shm segments): read back live by sqlite3 and after reopen', async () => {
    const file = path.join(tmpDir(), 'large.db');
    let db: Database = await openDatabase(file, { pageSize: 1024, autoCheckpoint: false });
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)');
      const blob = Buffer.alloc(900, 3);
      for (let part = 0; part < 4; part++) {
        await db.transaction(async (tx) => {
          for (let k = 0; k < 4200; k++) await tx.run('INSERT INTO t(b) VALUES (?)', [blob]);
        });
      }
      expect(db.store.metrics().walFrames).toBeGreaterThan(16_000);
      expect(cli(file, 'PRAGMA integrity_check; SELECT count(*), sum(length(b)) FROM t')).toBe(`ok\n16800|${16800 * 900}`);
      await db.close();
      db = await openDatabase(file, { autoCheckpoint: false });
      expect(await db.get('SELECT count(*) AS n, sum(length(b)) AS bytes FROM t')).toEqual({ n: 16800, bytes: 16800 * 900 });
    } finally {
      await db.close();
    }
  });
});
