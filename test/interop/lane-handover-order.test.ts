// A commit lane's leader that closes hands the lead on; the commits its committer had already
// taken from the lane must be written before the new leader writes anything, or lane order
// (and each store's own order) breaks across the handover.
//
// Found by a chaos run (6 workers committing, reopening their stores, terminated at random,
// beside sqlite3 writers and checkpointers): a terminated worker's last commit, taken by the
// leader and waiting for WRITE, was written seconds later, after the same page's acknowledged
// commit by the worker's successor, so that acknowledged commit was gone from the database
// (5 of 24 runs). Here the WRITE lock is held by another process while the leader's committer
// holds a member's commit; the leader closes; the member's next commit (to the same page) goes
// to the member's own committer as the new leader. Both committers waited for WRITE: whichever
// got it first wrote first. close() cuts its committer's wait for a WRITE another connection
// holds only while that wait holds none of another store's commits (the member's store is open):
// the taken commit is written as the holder lets go (a member's commit reaching the closing
// leader's queue in the moment of the cut fails WALNUT_BUSY, reason LeaderClosed, nothing of it
// written; it breaks the member's chain, so the second one is refused ChainBroken unless it
// reached the lane before the member heard of the failure, lane.ts): whatever the outcomes, a
// commit written after another of the member's is never under it, and the page holds the
// member's last acknowledged commit.
import * as path from 'node:path';
import { expect, it } from 'vitest';

import { SHM_LOCK } from '../../lib/format/shm-header';
import { open, type Store } from '../../lib/index';
import { holdLock, release } from '../helpers/children';
import { overflowRowDatabase, sqliteIntegrity } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const settled = <T>(p: Promise<T>): Promise<PromiseSettledResult<T>> => Promise.allSettled([p]).then(([r]) => r!);

it('a closing leader writes (or, its wait for WRITE cut by the close, fails) what its committer took before the new leader writes: a member\'s commits stay in its order across the handover, the page holds its last acknowledged one', async () => {
  const file = path.join(dir, 'handover.db');
  const pgno = overflowRowDatabase(file)[0]!;
  const base = Buffer.alloc(4096);
  {
    const s = await open(file, { shareLane: false });
    const snap = await s.snapshot();
    (await snap.read(pgno)).copy(base);
    snap.release();
    await s.close();
  }
  const page = (k: number): Buffer => {
    const d = Buffer.from(base);
    d.fill(k, 4); // the overflow chain's link (bytes 0-3) kept
    return d;
  };
  const options = { busyTimeout: 10_000, autoCheckpoint: false } as const;
  let leader: Store = await open(file, options);
  let member: Store = await open(file, options);
  const misordered: string[] = [];
  const outcomes = new Set<string>();
  let last = base[4]!; // the page's content byte as the last acknowledged commit left it
  const rounds = 6;
  for (let r = 0; r < rounds; r++) {
    expect(leader.metrics().lane!.leader).toBe(true);
    const holder = await holdLock(`${file}-shm`, SHM_LOCK.WRITE, 1, 'exclusive');
    // (settled at once: the first may reject, LeaderClosed, before the second is made)
    const first = settled(member.commit([{ pgno, data: page(2 * r + 1) }]));
    await sleep(30); // the leader's committer took it and waits for WRITE
    const closing = leader.close();
    await sleep(10); // the member leads now
    const second = settled(member.commit([{ pgno, data: page(2 * r + 2) }]));
    await sleep(30);
    await release(holder);
    const [a, b] = await Promise.all([first, second]);
    await closing;
    const said = (x: PromiseSettledResult<unknown>): string => (x.status === 'fulfilled' ? 'ok' : `${x.reason.code}/${x.reason.reason}`);
    outcomes.add(`${said(a)} ${said(b)}`);
    if (a.status === 'fulfilled' && b.status === 'fulfilled' && !(b.value.firstFrame > a.value.lastFrame)) misordered.push(`round ${r}: first at frame ${a.value.lastFrame}, second at ${b.value.firstFrame}`);
    if (b.status === 'fulfilled') last = 2 * r + 2;
    else if (a.status === 'fulfilled') last = 2 * r + 1;
    if (member.chainBrokenBy !== null) member.resumeCommits(member.chainBrokenBy);
    const snap = await member.snapshot();
    const now = await snap.read(pgno);
    snap.release();
    if (now[4] !== last) misordered.push(`round ${r}: the page holds commit ${now[4]}, not ${last}`);
    // the member leads; a new store joins as the next round's member
    leader = member;
    member = await open(file, options);
  }
  await member.close();
  await leader.close();
  expect(misordered).toEqual([]);
  expect([...outcomes].filter((o) => !['ok ok', 'WALNUT_BUSY/LeaderClosed WALNUT_FAILED/ChainBroken', 'WALNUT_BUSY/LeaderClosed ok'].includes(o))).toEqual([]);
  expect(sqliteIntegrity(file)).toEqual(['ok']);
}, 30_000);
