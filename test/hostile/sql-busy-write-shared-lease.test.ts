// walnut/sql: autocommit statements whose commit waited busyTimeout for WRITE (WALNUT_BUSY,
// reason BusyWrite) run once more under the write lease (overtaken-writes.ts). Only the one that
// took the lease did: the others, due while it was being taken or held, were refused ("the
// lease is another write's") and failed WALNUT_BUSY though the lease they would have run under
// was this database's (README: "6 statements called at once: 3 of them"). Now a statement due
// while this database's lease is taken or held runs once more under it. Choreography: a python3
// sqlite3 process holds WRITE until told (sqlite-hold-write.py); 6 statements called at once
// wait busyTimeout for it in one batch and fail BusyWrite (the store's failedCommits); the
// process then commits, the lease is had, and all 6 run once more and commit (before: 1 did).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { holdWrite } from '../helpers/busy-writer';
import { tmpDir } from '../helpers/tmp';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('statements failing BusyWrite together run once more under the lease one of them took: all commit', async () => {
  const file = path.join(tmpDir(), 'busy-write-shared.db');
  sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w, v); CREATE TABLE s(k INTEGER PRIMARY KEY)');
  // a batch waits 200 ms for company (groupCommit.maxWaitMicros): the 6 statements, sequenced
  // within a few ms, are one batch and all fail BusyWrite (in batches of their own, the first
  // failing BusyWrite fails those sequenced after it ChainBroken, and those are run again at once)
  const db = await openDatabase(file, { busyTimeout: 1000, groupCommit: { maxWaitMicros: 200_000 } });
  const holder = await holdWrite(file);
  let outcomes: string[];
  try {
    const calls = [1, 2, 3, 4, 5, 6].map((k) =>
      db.run('INSERT INTO s(k) VALUES (?)', [k]).then(
        () => 'ok',
        (e: { code?: string; reason?: string }) => `${e.code}/${e.reason}`,
      ),
    );
    for (let i = 0; i < 1000 && db.store.metrics().failedCommits < 6; i++) await sleep(10);
    expect(db.store.metrics().failedCommits).toBe(6);
    await sleep(100); // (their lease waits began)
    holder.commit();
    outcomes = await Promise.all(calls);
  } finally {
    await holder.stop();
  }
  const failed = db.store.metrics().failedCommits;
  await db.close();
  console.log(`outcomes ${outcomes.join(" ")}; failed commits ${failed}; leases ${db.leasedRetries}`);
  expect(outcomes).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ok']);
  expect(sqlite(file, 'SELECT group_concat(k) FROM (SELECT k FROM s ORDER BY k)')).toBe('1,2,3,4,5,6');
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
}, 30000);
