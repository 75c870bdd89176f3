// walnut/sql on a replica's file (a real nats-server, test/helpers/nats.ts; skipped with a
// message when it is not installed). openDatabase opened it read-write (README said: do not write
// to a replica): while the replica ran, a write waited busyTimeout (5 s) for the WAL write lock
// the replica holds and failed WALNUT_BUSY, "retry it" (measured on the old code: 5 s per
// write); once the replica was closed, a write went into its database, one the primary never
// made, acknowledged, and the replica opened again met a page delta that did not match
// ('error' WALNUT_CORRUPT), re-based, and the row was gone. Now a database with a replica's position file beside it (`<db>-replica`) opens
// read-only unless readOnly: false is passed: while openReplica applies the primary's commits,
// every write through walnut/sql fails WALNUT_READONLY, reason Replica, reads see the replicated
// rows at commit boundaries, the replica keeps applying, and at the end it equals the primary
// page for page. holdWriteLease (WAL's write lock, which would keep the replica's commits out) is
// refused there. readOnly: false writes anyway (the caller's risk).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { openReplica } from '../../lib/replicate/replica';
import { openDatabase, type Database } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { pageHashes } from '../helpers/page-hashes';
import { caughtUp, newPrimary } from '../helpers/replicating';
import { tmpDir } from '../helpers/tmp';
import { WAIT_MS } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);
expectNoUnhandledRejections();

const dir = tmpDir('walnut-sql-read-only-replica-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

/** Polls `count()` until it is at least `n` (a replica applies in its own time); resolves with the last count. */
async function untilCount(count: () => Promise<number>, n: number): Promise<number> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const c = await count();
    if (c >= n) return c;
    if (Date.now() > deadline) throw new Error(`${c} rows after ${WAIT_MS} ms, waiting for ${n}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const rowsOf = async (db: Database): Promise<number> => Number((await db.get('SELECT count(*) AS n FROM t'))!['n']);

describe.skipIf(NATS_SKIP !== null)('openDatabase on a replica\'s file', () => {
  it('is read-only while the replica applies: writes refused WALNUT_READONLY (reason Replica), reads see the replicated rows, the replica keeps applying and ends equal to the primary; readOnly: false writes', async () => {
    const server = await startNatsServer();
    started.push(server);
    const primaryFile = newPrimary(dir);
    const primary = await openDatabase(primaryFile);
    const r = primary.store.replicateTo({ servers: server.url, stream: 'ro', stopTimeoutMs: 60_000 });
    await r.ready;
    const replicaPath = path.join(dir, 'replica.db');
    const replica = await openReplica(replicaPath, { servers: server.url, stream: 'ro' });
    for (let i = 0; i < 10; i++) await primary.run('INSERT INTO t(w, v) VALUES (1, ?)', [i]);

    const ro = await openDatabase(replicaPath); // no readOnly given: the position file decides
    let roClosed = false;
    try {
      expect(ro.readOnly).toBe(true);
      await untilCount(() => rowsOf(ro), 10);
      await expectRejectsWalnut(openDatabase(replicaPath, { holdWriteLease: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'holdWriteLease' });

      // the primary commits on while walnut/sql tries to write to the replica, by every verb
      const COMMITS = 150;
      let primaryDone = false;
      const primaryWrites = (async () => {
        for (let i = 0; i < COMMITS; i++) await primary.run('INSERT INTO t(w, v) VALUES (2, ?)', [i]);
        primaryDone = true;
      })();
      const attempts: (() => Promise<unknown>)[] = [
        () => ro.run("INSERT INTO t(w, v) VALUES (9, 'not the primary')"),
        () => ro.exec('DELETE FROM t WHERE w = 1'),
        () => ro.get('UPDATE t SET v = 0 RETURNING id'),
        () => ro.exec('CREATE TABLE diverged(a)'),
        () => ro.run('PRAGMA user_version=3'),
        () => ro.transaction(async (tx) => {
          await tx.get('SELECT max(id) FROM t');
          await tx.run("INSERT INTO t(w, v) VALUES (9, 'tx')");
        }),
      ];
      let refused = 0;
      let seen = 10;
      while (!primaryDone || refused < attempts.length) {
        const err = await expectRejectsWalnut(attempts[refused % attempts.length]!(), 'WALNUT_READONLY', { reason: 'Replica' });
        expect(err.message).toMatch(/replica/);
        refused++;
        const now = await rowsOf(ro); // a read connection's snapshot of the replica: never goes back
        expect(now).toBeGreaterThanOrEqual(seen);
        seen = now;
        expect(await ro.get('SELECT count(*) AS n FROM t WHERE w = 9')).toEqual({ n: 0 });
      }
      await primaryWrites;
      expect(seen).toBeGreaterThan(10); // (rows applied while the writes were refused: the replica went on)

      await caughtUp(r, replica);
      expect(await untilCount(() => rowsOf(ro), 10 + COMMITS)).toBe(10 + COMMITS);
      expect(await ro.get("SELECT count(*) AS n FROM sqlite_schema WHERE name = 'diverged'")).toEqual({ n: 0 });
      expect(await pageHashes(replica.store)).toEqual(await pageHashes(primary.store));
      await ro.close();
      roClosed = true;
      expect(replica.lag().stalledBy ?? null).toBeNull();
    } finally {
      if (!roClosed) await ro.close();
      await replica.close();
      await primary.close();
    }

    // the replica closed, its position file stays: read-only still by default; readOnly: false writes (the caller's risk)
    const still = await openDatabase(replicaPath);
    expect(still.readOnly).toBe(true);
    await expectRejectsWalnut(still.run("INSERT INTO t(w, v) VALUES (9, 'x')"), 'WALNUT_READONLY', { reason: 'Replica' });
    await still.close();
    const rw = await openDatabase(replicaPath, { readOnly: false });
    expect(rw.readOnly).toBe(false);
    await rw.run("INSERT INTO t(w, v) VALUES (9, 'written by its caller')");
    await rw.close();
    expect(execFileSync('sqlite3', [replicaPath, 'SELECT count(*) FROM t WHERE w = 9'], { encoding: 'utf8' }).trim()).toBe('1');
  }, 60_000);
});
