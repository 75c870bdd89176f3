// close() while a commit, a checkpoint or a walnut/sql statement waits for SQLite's WAL write lock
// (WRITE) that another process holds: a python3 sqlite3 process in BEGIN IMMEDIATE with an
// INSERT, told to commit only after the close. The waits block in the kernel (F_OFD_SETLKW on a
// lock-lane thread, after their first quick tries: wal-index.ts #lockShm); close() waited for the
// calls already running, so it took the rest of the busy timeout (20 s here). Now close() cuts
// such waits (WalIndex.cutLockWaits): it settles within CLOSE_MS_AT_MOST (an honest upper bound,
// far below the 20 s the old wait took), every pending call rejects WALNUT_CLOSED (reason
// WriteWaitCut; a sql statement, not run again, with that error), nothing of them is written
// (page 1's user_version, which the cut commits would have set, and the rows), no lock-lane
// thread still waits on the -shm (no `->` waiter in /proc/locks for its inode), python3 then
// takes WRITE with no busy timeout at all once its holder let go and its commit is intact, and a
// fresh store opens and commits. A lane leader's close() with another store's commit in its waiting
// batch is not cut (that store is open): the batch lands once the holder lets go. A variant with a 16,000+-frame WAL another process keeps writing to: the cut leaves
// that WAL and every row of it intact.
import * as fs from 'node:fs';

import { describe, expect, it } from 'vitest';

import { open, type Store } from '../../lib/commit/store';
import { openDatabase } from '../../lib/sql';
import { holdWrite } from '../helpers/busy-writer';
import { BUSY_TIMEOUT_MS, closeDuringTheWait, newCutDatabase, outcome, page1WithUserVersion, sleep, sqliteCli } from '../helpers/close-cut';
import { pythonSqlite } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

/** Past the five quick tries of a wait for WRITE: it blocks in the kernel by then. */
const INTO_THE_WAIT_MS = 300;

const dir = tmpDir();
const sqlite = sqliteCli;
const newDatabase = (): string => newCutDatabase(dir);

/** sqlite3 takes WRITE at once (no busy timeout): 'ok', or its error. */
function sqliteTakesWrite(file: string): Promise<string> {
  return pythonSqlite(file, "d = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\ntry:\n  d.execute('BEGIN IMMEDIATE'); d.execute('ROLLBACK'); print('ok')\nexcept Exception as e:\n  print(e)\nd.close()");
}

/** Lines of /proc/locks for a lock wait (`->`) blocked on `file`'s inode: a lock-lane thread still waiting. */
function blockedWaitersOn(file: string): string[] {
  const st = fs.statSync(file);
  const inode = `:${st.ino} `;
  return fs.readFileSync('/proc/locks', 'utf8').split('\n').filter((l) => l.includes('->') && l.includes(inode));
}


/** After the cut close: nothing waits on the -shm, the holder commits, sqlite3 takes WRITE at once, a fresh store commits. */
async function afterCut(file: string, holder: { commit(): void; stop(): Promise<void> }, rowsBefore: number): Promise<void> {
  expect(blockedWaitersOn(`${file}-shm`), 'a lock-lane thread still waits for WRITE').toEqual([]);
  holder.commit();
  await holder.stop();
  expect(await sqliteTakesWrite(file)).toBe('ok');
  expect(sqlite(file, 'SELECT count(*) FROM t')).toBe(String(rowsBefore + 1)); // the holder's row
  const fresh = await open(file, { busyTimeout: BUSY_TIMEOUT_MS, shareLane: false });
  try {
    await fresh.commit([{ pgno: 1, data: await page1WithUserVersion(fresh, 7) }]);
  } finally {
    await fresh.close();
  }
  expect(sqlite(file, 'PRAGMA user_version')).toBe('7');
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
}

describe('close() cuts waits for a WRITE another process holds (busyTimeout 20 s)', () => {
  it('commits waiting (a batch and the queue behind it): close() settles at once, they reject WALNUT_CLOSED, nothing written', async () => {
    const file = newDatabase();
    const store = await open(file, { busyTimeout: BUSY_TIMEOUT_MS, shareLane: false });
    const holder = await holdWrite(file);
    try {
      const page = await page1WithUserVersion(store, 42);
      const commits = [store.commit([{ pgno: 1, data: page }]), store.commit([{ pgno: 1, data: page }])].map(outcome);
      await sleep(INTO_THE_WAIT_MS / 2);
      commits.push(outcome(store.commit([{ pgno: 1, data: page }]))); // queued behind the waiting batch
      const tx = store.begin();
      await tx.read(1);
      tx.write(1, page);
      commits.push(outcome(tx.commit()));
      await closeDuringTheWait(() => store.close());
      expect(await Promise.all(commits)).toEqual(Array(4).fill('WALNUT_CLOSED/WriteWaitCut'));
      expect(sqlite(file, 'PRAGMA user_version')).toBe('0'); // nothing of them written
      await afterCut(file, holder, 0);
    } finally {
      await holder.stop();
      await store.close(); // (the same promise when the test closed it)
    }
  });

  it("a lane leader's close() with another store's commit in its waiting batch is not cut: that store is open; both commits land once the holder lets go, and close() settles then", async () => {
    const file = newDatabase();
    const leader = await open(file, { busyTimeout: BUSY_TIMEOUT_MS });
    const member = await open(file, { busyTimeout: BUSY_TIMEOUT_MS });
    const holder = await holdWrite(file);
    try {
      expect([leader.metrics().lane?.leader, member.metrics().lane?.leader]).toEqual([true, false]);
      const page = await page1WithUserVersion(member, 42);
      const own = outcome(leader.commit([{ pgno: 1, data: page }]));
      const members = outcome(member.commit([{ pgno: 1, data: page }]));
      await sleep(INTO_THE_WAIT_MS); // the leader took the member's commit into its batch, which waits for WRITE
      let closed = false;
      const closing = leader.close().then(() => (closed = true));
      await sleep(INTO_THE_WAIT_MS);
      // (cut, the member's commit failed WALNUT_BUSY LeaderClosed and broke its chain: a worker's
      // store shutting down failed the commits of the others beside another process's writer)
      expect(closed, 'the close waits for the member\'s commit').toBe(false);
      holder.commit();
      await closing;
      expect([await own, await members]).toEqual(['ok', 'ok']);
      expect(sqlite(file, 'PRAGMA user_version')).toBe('42');
      expect(member.metrics().lane?.leader).toBe(true);
      await member.commit([{ pgno: 1, data: await page1WithUserVersion(member, 43) }]); // its chain is whole
      expect(sqlite(file, 'PRAGMA user_version')).toBe('43');
    } finally {
      await holder.stop();
      await leader.close();
      await member.close();
    }
    expect(await sqliteTakesWrite(file)).toBe('ok');
    expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
  });

  for (const mode of ['full', 'restart', 'truncate'] as const) {
    it(`a ${mode} checkpoint waiting: close() settles at once, it rejects WALNUT_CLOSED`, async () => {
      const file = newDatabase();
      const store = await open(file, { busyTimeout: BUSY_TIMEOUT_MS, shareLane: false, autoCheckpoint: false });
      await store.commit([{ pgno: 1, data: await page1WithUserVersion(store, 3) }]); // a frame to copy
      const holder = await holdWrite(file);
      try {
        const checkpoint = outcome(store.checkpoint(mode));
        await closeDuringTheWait(() => store.close());
        expect(await checkpoint).toBe('WALNUT_CLOSED/WriteWaitCut');
        expect(sqlite(file, 'PRAGMA user_version')).toBe('3'); // the commit before stays
        await afterCut(file, holder, 0);
      } finally {
        await holder.stop();
      }
    });
  }

  it('a walnut/sql statement waiting: db.close() settles at once, it rejects WALNUT_CLOSED, nothing of it written', async () => {
    const file = newDatabase();
    sqlite(file, 'CREATE TABLE s(k INTEGER PRIMARY KEY)');
    const db = await openDatabase(file, { busyTimeout: BUSY_TIMEOUT_MS });
    await db.run('INSERT INTO s(k) VALUES (1)');
    const holder = await holdWrite(file);
    try {
      const calls = [db.run('INSERT INTO s(k) VALUES (2)'), db.exec('INSERT INTO s(k) VALUES (3); INSERT INTO s(k) VALUES (4)'), db.transaction(async (tx) => tx.run('INSERT INTO s(k) VALUES (5)'))].map(outcome);
      await closeDuringTheWait(() => db.close());
      const outcomes = await Promise.all(calls);
      expect(outcomes.every((o) => o.startsWith('WALNUT_CLOSED') || o.startsWith('WALNUT_CONFLICT/ChainBroken')), outcomes.join(', ')).toBe(true);
      expect(outcomes[0]).toBe('WALNUT_CLOSED/WriteWaitCut');
      expect(sqlite(file, 'SELECT group_concat(k) FROM s')).toBe('1'); // nothing of them written
      await afterCut(file, holder, 0);
    } finally {
      await holder.stop();
      await db.close(); // (the same promise when the test closed it)
    }
  });

  it('beside a 16,000+-frame WAL another process keeps writing to: the cut leaves the WAL and every row intact', async () => {
    const file = newDatabase();
    // open first: python3's connections are then never the last one, and leave their WAL as it is
    const store = await open(file, { busyTimeout: BUSY_TIMEOUT_MS, shareLane: false, autoCheckpoint: false });
    // 16,000+ frames: one transaction each, no checkpoint (python3 writes them: sqlite3's own WAL)
    await pythonSqlite(file, "c.execute('PRAGMA wal_autocheckpoint=0'); c.execute('PRAGMA synchronous=OFF')\nfor i in range(16100): c.execute('INSERT INTO t VALUES (?, ?)', (i, 'x' * 20))");
    const walFrames = (fs.statSync(`${file}-wal`).size - 32) / (4096 + 24);
    expect(walFrames).toBeGreaterThan(16_000);
    // the other process goes on: a row and a commit at a time, then BEGIN IMMEDIATE held until told
    await pythonSqlite(file, "c.execute('PRAGMA wal_autocheckpoint=0')\nfor i in range(200): c.execute('INSERT INTO t VALUES (?, ?)', (-i, 'y'))");
    const holder = await holdWrite(file);
    try {
      const commit = outcome(store.commit([{ pgno: 1, data: await page1WithUserVersion(store, 42) }]));
      const checkpoint = outcome(store.checkpoint('truncate'));
      await closeDuringTheWait(() => store.close());
      expect([await commit, await checkpoint]).toEqual(['WALNUT_CLOSED/WriteWaitCut', 'WALNUT_CLOSED/WriteWaitCut']);
      expect(sqlite(file, 'PRAGMA user_version')).toBe('0');
      await afterCut(file, holder, 16_300);
    } finally {
      await holder.stop();
      await store.close(); // (the same promise when the test closed it)
    }
  });
});
