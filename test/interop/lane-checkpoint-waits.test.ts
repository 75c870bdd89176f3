// A lane member's transaction keeps its snapshot (a read mark of the member's connection) until
// its commit settles (lane.ts). When another connection's RESTART/TRUNCATE/FULL checkpoint holds
// WRITE and waits for readers, the leader's committer waits for WRITE while the checkpoint waits
// for that member's read mark: both stalled until a busy timeout. The leader's own transactions
// fail at once there (WALNUT_BUSY, reason CheckpointWaits: README, as SQLite answers
// SQLITE_BUSY); a member's must too, whether the leader took it already or it is still queued in
// the lane behind a batch that waits for WRITE.
//
// Found by a chaos run (4 workers committing and running transactions, members calling
// checkpoint('restart'|'truncate'|'full'), busyTimeout 20 s): no commit of any worker was
// acknowledged for 20.0 s, and beside sqlite3 checkpointers (busy_timeout 2 s) gaps of 3.6-5 s.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { expect, it } from 'vitest';

import { open } from '../../lib/index';
import { overflowRowDatabase, sqliteIntegrity, stampPage } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const SQLITE_WAIT_MS = 4000;

/** python3's sqlite3 runs wal_checkpoint(mode) with a busy timeout; resolves with its row and how long it took. */
function sqliteCheckpoint(file: string, mode: string): { started: Promise<void>; done: Promise<{ row: number[]; ms: number }> } {
  const script = [
    'import sqlite3, sys, time',
    `c = sqlite3.connect(sys.argv[1], isolation_level=None)`,
    `c.execute('PRAGMA busy_timeout=${SQLITE_WAIT_MS}')`,
    'print("start", flush=True)',
    't = time.time()',
    `r = c.execute('PRAGMA wal_checkpoint(${mode})').fetchone()`,
    'print("done", r[0], r[1], r[2], int((time.time() - t) * 1000), flush=True)',
  ].join('\n');
  const child = spawn('python3', ['-c', script, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let onStart: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (onStart = resolve));
  const done = new Promise<{ row: number[]; ms: number }>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('start')) onStart();
    });
    child.on('close', (code) => {
      const m = /done (\S+) (\S+) (\S+) (\d+)/.exec(out);
      if (code !== 0 || m === null) reject(new Error(`checkpointer exited ${code}: ${out}`));
      else resolve({ row: [Number(m[1]), Number(m[2]), Number(m[3])], ms: Number(m[4]) });
    });
  });
  return { started, done };
}

it('another connection\'s RESTART checkpoint waiting for a lane member\'s transaction: the member\'s commit fails at once (WALNUT_BUSY, CheckpointWaits), taken or still queued in the lane, and the checkpoint completes', async () => {
  const file = path.join(dir, 'ckpt-waits.db');
  const [p1, p2] = overflowRowDatabase(file);
  const options = { busyTimeout: 15_000, autoCheckpoint: false } as const;
  const leader = await open(file, options);
  const member = await open(file, options);
  expect(leader.metrics().lane!.leader).toBe(true);
  const stamp = (pgno: number, k: number): Promise<Buffer> => stampPage(leader, pgno, k);
  const outcomes: string[] = [];
  for (const leaderWritesFirst of [false, true]) {
    await leader.commit([{ pgno: p1!, data: await stamp(p1!, 1) }]); // frames the checkpoint copies first
    const tx = member.begin();
    await tx.read(p2!);
    tx.write(p2!, await stamp(p2!, 2));
    const ckpt = sqliteCheckpoint(file, 'RESTART');
    await ckpt.started;
    await new Promise((resolve) => setTimeout(resolve, 300)); // it holds WRITE, waits for the member's read mark
    // the leader's own commit first: its committer waits for WRITE, the member's commit stays queued in the lane
    const own = leaderWritesFirst ? leader.commit([{ pgno: p1!, data: await stamp(p1!, 3) }]) : null;
    const t0 = performance.now();
    const r = await tx.commit().then(() => 'ok', (e: { code?: string; reason?: string }) => `${e.code}/${e.reason}${member.chainBrokenBy === null ? '' : ' (chain broken)'}`); // a transaction's failure breaks no chain (README)
    const ms = performance.now() - t0;
    const c = await ckpt.done;
    await own;
    outcomes.push(`${leaderWritesFirst ? 'queued' : 'taken'}: commit ${r}${ms < SQLITE_WAIT_MS / 2 ? '' : ` after ${Math.round(ms)} ms`}, checkpoint busy ${c.row[0]}`);
  }
  await member.close();
  await leader.close();
  expect(outcomes).toEqual(['taken: commit WALNUT_BUSY/CheckpointWaits, checkpoint busy 0', 'queued: commit WALNUT_BUSY/CheckpointWaits, checkpoint busy 0']);
  expect(sqliteIntegrity(file)).toEqual(['ok']);
}, 40_000);

it('the leader\'s own FULL checkpoint under WRITE does not wait for a lane member\'s transaction that waits for the leader\'s committer (taken or still queued in the lane): the checkpoint is busy at once, the commit goes through', async () => {
  const file = path.join(dir, 'own-ckpt.db');
  const [p1, p2] = overflowRowDatabase(file);
  const BUSY_MS = 3000;
  const options = { busyTimeout: BUSY_MS, autoCheckpoint: false } as const;
  const leader = await open(file, options);
  const member = await open(file, options);
  expect(leader.metrics().lane!.leader).toBe(true);
  const stamp = (pgno: number, k: number): Promise<Buffer> => stampPage(leader, pgno, k);
  const outcomes: string[] = [];
  for (const leaderWritesFirst of [false, true]) {
    await leader.commit([{ pgno: p1!, data: await stamp(p1!, 1) }]);
    const tx = member.begin();
    await tx.read(p2!);
    tx.write(p2!, await stamp(p2!, 2));
    await leader.commit([{ pgno: p1!, data: await stamp(p1!, 3) }]); // past the member's read mark
    const t0 = performance.now();
    const ckpt = leader.checkpoint('full').then((r) => ({ r, ms: performance.now() - t0 }));
    await new Promise((resolve) => setTimeout(resolve, 100)); // it holds WRITE, waits for the member's read mark
    const own = leaderWritesFirst ? leader.commit([{ pgno: p1!, data: await stamp(p1!, 4) }]) : null;
    const committed = tx.commit().then(() => 'ok', (e: { code?: string; reason?: string }) => `${e.code}/${e.reason}`);
    const [c, r] = await Promise.all([ckpt, committed]);
    const ms = performance.now() - t0;
    await own;
    outcomes.push(`${leaderWritesFirst ? 'queued' : 'taken'}: commit ${r}, checkpoint busy ${c.r.busy}${ms < BUSY_MS / 2 ? '' : ` after ${Math.round(ms)} ms`}`);
  }
  await member.close();
  await leader.close();
  expect(outcomes).toEqual(['taken: commit ok, checkpoint busy true', 'queued: commit ok, checkpoint busy true']);
  expect(sqliteIntegrity(file)).toEqual(['ok']);
}, 40_000);
