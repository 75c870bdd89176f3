// store.dataVersion() is SQLite's PRAGMA data_version: it changes when ANOTHER connection
// commits (README, The API), and every store of a commit lane is a connection of its own
// ("Other processes see one connection per store, of which only the leader writes"; a member
// sees its own commits as another connection's). So the lane's leader must see a member's
// commit, which its own committer writes, as another connection's too: a page cache the
// leader's thread keeps against dataVersion() (or against snapshot.dataVersion, "a commit by
// another connection is in the snapshot exactly when it is counted") must be told.
//
// Found by storebreak (dataVersion next to better-sqlite3's data_version after each kind of
// commit): the leader's dataVersion() stayed the same across a member's commit, in this thread
// or in a worker, and a snapshot that saw the member's page had the dataVersion of one that did
// not: a cache keyed on it served the page as it was before the member's commit.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { expect, it } from 'vitest';

import { open } from '../../lib/index';
import { HELPERS } from '../helpers/children';
import { Database } from '../helpers/sqlite';
import { overflowRowDatabase } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

function page(next: number, tag: number): Buffer {
  const data = Buffer.alloc(4096, tag & 0xff);
  data.writeUInt32BE(next, 0); // the overflow chain's link kept
  data.writeUInt32BE(tag, 4);
  return data;
}

/** An overflow page of a one-row database and its chain link. */
function database(): { file: string; pgno: number; next: number } {
  const file = path.join(tmpDir(), 'dv.db');
  const pgnos = overflowRowDatabase(file);
  return { file, pgno: pgnos[0]!, next: pgnos[1]! };
}

it('a member store of this thread commits: the leader\'s dataVersion() and its next snapshot\'s dataVersion change', async () => {
  const { file, pgno, next } = database();
  const leader = await open(file);
  const member = await open(file);
  try {
    expect(leader.metrics().lane!.leader).toBe(true);
    expect(member.metrics().lane!.leader).toBe(false);

    await leader.commit([{ pgno, data: page(next, 1) }]);
    const before = leader.dataVersion();
    const snapBefore = await leader.snapshot();
    expect((await snapBefore.read(pgno)).readUInt32BE(4)).toBe(1);
    snapBefore.release();

    await member.commit([{ pgno, data: page(next, 2) }]);
    const snapAfter = await leader.snapshot();
    expect((await snapAfter.read(pgno)).readUInt32BE(4)).toBe(2); // the member's page...
    expect(snapAfter.dataVersion).not.toBe(snapBefore.dataVersion); // ...under another data version
    snapAfter.release();
    expect(leader.dataVersion()).not.toBe(before);

    // the leader's own commit still does not change it (SQLite's meaning)
    const own = leader.dataVersion();
    await leader.commit([{ pgno, data: page(next, 3) }]);
    expect(leader.dataVersion()).toBe(own);

    // a member's transaction, too
    const v = leader.dataVersion();
    const tx = member.begin();
    tx.write(pgno, page(next, 4));
    await tx.commit();
    expect(leader.dataVersion()).not.toBe(v);
  } finally {
    await member.close();
    await leader.close();
  }
});

it('a member store in a worker thread commits: the leader\'s dataVersion() changes, as better-sqlite3\'s data_version does', async () => {
  const { file, pgno, next } = database();
  const leader = await open(file);
  const sqlite = new Database(file);
  try {
    expect(leader.metrics().lane!.leader).toBe(true);
    const dataVersion = () => sqlite.pragma('data_version', { simple: true });
    const before = leader.dataVersion();
    const sqliteBefore = dataVersion();
    const memberLed = await new Promise<unknown>((resolve, reject) => {
      let led: unknown;
      const worker = new Worker(path.join(HELPERS, 'lane-worker.js'), { workerData: { db: file, w: 1, slots: [{ pgno, next }], commits: 3 } });
      worker.on('message', ([kind, a]: [string, unknown]) => {
        if (kind === 'open') led = a;
        if (kind === 'closed') resolve(led);
        if (kind === 'error') reject(new Error(String(a)));
      });
      worker.on('error', reject);
    });
    expect(memberLed).toBe(false);
    const snap = await leader.snapshot();
    expect((await snap.read(pgno)).readUInt32BE(12)).toBe(3); // the worker's third commit
    snap.release();
    expect(dataVersion()).not.toBe(sqliteBefore);
    expect(leader.dataVersion()).not.toBe(before);
  } finally {
    sqlite.close();
    await leader.close();
  }
});
