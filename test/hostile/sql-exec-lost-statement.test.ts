// exec() runs several statements, each its own transaction (autocommit), in one call. A later
// statement must not run on a state without what an earlier one committed or read: after a
// commit of the call, or a commit an earlier statement saw (another call's, sequenced, not
// durable yet), was lost (another connection committed after its snapshot: WALNUT_CONFLICT at
// its durability), the pipeline recovers and the next view no longer holds it. Two ways that
// went wrong, both while a sqlite3 process committed beside a slow statement in the middle:
//  - exec('CREATE TABLE IF NOT EXISTS uK(x); <slow>; INSERT INTO log ...') beside another call's
//    exec('CREATE TABLE uK(x)') resolved although the uK it found was that call's lost table
//    (the read waits of a call's earlier statements were dropped once a later one committed:
//    a44ee6d), so uK did not exist: 11-14 of 20 per round;
//  - exec("INSERT c1; <slow>; INSERT c2") applied c2 after c1 was lost and rejected with a
//    retryable WALNUT_CONFLICT (a retry applied c2 twice): 10-17 of 20 per round.
// walnut/sql now runs such an exec() again itself from its first lost statement (within
// busyTimeout), so most calls resolve; the same checks hold (nothing applied twice or alone).
// Real parts: better-sqlite3 in its own process (test/helpers/sqlite-ticker.js) committing back to back.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { startTicker } from '../helpers/ticker';
import { tmpDir } from '../helpers/tmp';

function sqlite3(file: string, sql: string): string {
  return execFileSync('sqlite3', ['-cmd', '.timeout 5000', file, sql], { encoding: 'utf8' }).trim();
}

/** A statement that computes for some milliseconds and commits nothing. */
const SLOW = 'WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100000) SELECT count(*) FROM c';

test("exec()'s later statements never run on a state without what its earlier ones committed or read: no statement after a lost one applied, none acknowledged on a lost table", async () => {
  const file = path.join(tmpDir(), 'exec-lost.db');
  const db = await openDatabase(file);
  const outcome = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: Error & { code?: string; reason?: string }) => `${e.code}/${e.reason}: ${e.message}`);
  const rounds: { k: number; create: string; ifNotExists: string; run: string; pair: string }[] = [];
  try {
    await db.exec('CREATE TABLE ext(v); CREATE TABLE log(x)');
    const ticker = await startTicker(file, 3000);
    const hardEnd = Date.now() + 30_000;
    for (let k = 0; (!ticker.done || k < 10) && Date.now() < hardEnd; k++) {
      // made without awaiting: each finds the writer busy and queues, so their commits are in flight together
      const create = outcome(db.exec(`CREATE TABLE u${k}(x)`));
      const ifNotExists = outcome(db.exec(`CREATE TABLE IF NOT EXISTS u${k}(x); ${SLOW}; INSERT INTO log VALUES ('n${k}')`));
      const run = outcome(db.run('INSERT INTO log VALUES (?)', [`r${k}`]));
      const pair = outcome(db.exec(`INSERT INTO log VALUES ('c1_${k}'); ${SLOW}; INSERT INTO log VALUES ('c2_${k}')`));
      rounds.push({ k, create: await create, ifNotExists: await ifNotExists, run: await run, pair: await pair });
    }
    const { code, stderr } = await ticker.exited;
    expect(code, stderr).toBe(0);
    expect(ticker.commits).toBeGreaterThan(0);
    await db.close();
  } finally {
    if (db.open) await db.close().catch(() => undefined);
  }
  const tables = new Set(sqlite3(file, "SELECT name FROM sqlite_master WHERE type = 'table'").split('\n'));
  const log = sqlite3(file, 'SELECT x FROM log').split('\n');
  const count = (x: string): number => log.filter((l) => l === x).length;
  const wrong: string[] = [];
  for (const r of rounds) {
    const k = r.k;
    if (r.create === 'ok' && !tables.has(`u${k}`)) wrong.push(`${k}: CREATE TABLE u${k} acknowledged, no u${k}`);
    if (r.ifNotExists === 'ok' && !tables.has(`u${k}`)) wrong.push(`${k}: CREATE TABLE IF NOT EXISTS u${k} acknowledged, no u${k}`);
    if (count(`n${k}`) !== (r.ifNotExists === 'ok' ? 1 : 0)) wrong.push(`${k}: n${k} ${count(`n${k}`)} times, its exec ${r.ifNotExists}`);
    if (r.run === 'ok' && count(`r${k}`) !== 1) wrong.push(`${k}: r${k} acknowledged, ${count(`r${k}`)} times`);
    if (count(`c2_${k}`) > count(`c1_${k}`)) wrong.push(`${k}: c2_${k} applied without c1_${k} (its exec ${r.pair})`);
    if (r.pair === 'ok' ? count(`c1_${k}`) + count(`c2_${k}`) !== 2 : count(`c2_${k}`) !== 0) wrong.push(`${k}: c1_${k} ${count(`c1_${k}`)}, c2_${k} ${count(`c2_${k}`)} times, its exec ${r.pair}`);
  }
  expect(wrong).toEqual([]);
  // the sqlite3 process got in between (else nothing was tested): calls failed, or walnut/sql ran
  // them again (an exec() from its first statement whose commit was lost: exec-progress.ts)
  expect(rounds.filter((r) => r.create !== 'ok' || r.pair !== 'ok').length + db.conflictRetries).toBeGreaterThan(0);
  expect(sqlite3(file, 'PRAGMA integrity_check')).toBe('ok');
}, 60_000);
