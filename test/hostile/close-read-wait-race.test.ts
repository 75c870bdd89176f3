// close() at random points of calls waiting for read locks another process holds: checkpoints
// (full, restart, truncate, passive) beside a python3 read transaction, and snapshot() and
// begin()'s first read while a lock holder has READ(1..4) exclusively; one to three stores on
// the database (lane-sharing or not), closed in a random order, the holders let go at random
// points or only after the closes (busyTimeout 20 s, so a close that waited a wait out cannot
// pass). Asserted per round: every call settles, as done or WALNUT_CLOSED ReadLockWaitCut and
// nothing else; each close settles within CLOSE_MS_AT_MOST; nothing is left held (the sqlite3
// CLI's TRUNCATE checkpoint then completes: 0|0|0). At the end: integrity_check ok.
// (The cut itself, deterministically: close-cuts-read-lock-waits.)
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

import { expect, it } from 'vitest';

import { open, type Store } from '../../lib/commit/store';
import { SHM_LOCK } from '../../lib/format/shm-header';
import { BUSY_TIMEOUT_MS, CLOSE_MS_AT_MOST, newCutDatabase, outcome, sleep, sqliteCli } from '../helpers/close-cut';
import { holdLock, release } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';
import { seededRandom } from '../helpers/wal-damage';

const ROUNDS = 12;
const dir = tmpDir();

/** A python3 read transaction on `file`, held until its stdin ends. */
function pythonReader(file: string): Promise<ChildProcess> {
  const script = "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1], isolation_level=None)\nc.execute('BEGIN')\nc.execute('SELECT count(*) FROM t').fetchone()\nprint('held', flush=True)\nsys.stdin.read()\nc.execute('COMMIT')";
  const child = spawn('python3', ['-c', script, file], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`the python3 reader exited (${code}) before it read`)));
  });
}

async function endReader(reader: ChildProcess): Promise<void> {
  if (reader.exitCode !== null) return;
  const exited = new Promise((resolve) => reader.once('exit', resolve));
  reader.stdin!.end();
  await exited;
}

it(`close() at random points of checkpoints, snapshots and transactions waiting for read locks another process holds (${ROUNDS} rounds): each settles done or ReadLockWaitCut, closes prompt, nothing held after`, async () => {
  const rand = seededRandom(0x4ead);
  const file = newCutDatabase(dir);
  const seen = new Set<string>();
  for (let round = 0; round < ROUNDS; round++) {
    const stores: Store[] = [];
    for (let i = 1 + rand(3); i > 0; i--) stores.push(await open(file, { busyTimeout: BUSY_TIMEOUT_MS, shareLane: rand(2) === 0 }));
    const snap = await stores[0]!.snapshot();
    const page1 = Buffer.from(await snap.read(1));
    snap.release();
    await stores[0]!.commit([{ pgno: 1, data: page1 }]); // a frame for the checkpoints to copy (page 1 as it is)
    const reader = rand(2) === 0 ? await pythonReader(file) : null;
    const slots = reader === null && rand(2) === 0 ? await holdLock(`${file}-shm`, SHM_LOCK.READ(1), 4, 'exclusive') : null;
    const calls: Array<Promise<string>> = [];
    for (const s of stores) {
      for (let k = 1 + rand(3); k > 0; k--) {
        const kind = (['checkpoint', 'snapshot', 'begin'] as const)[rand(3)]!;
        if (kind === 'checkpoint') calls.push(outcome(s.checkpoint((['full', 'restart', 'truncate', 'passive'] as const)[rand(4)]!)));
        else if (kind === 'snapshot') calls.push(outcome(s.snapshot().then((snap) => snap.release())));
        else calls.push(outcome((async () => { const tx = s.begin(); await tx.read(1); await tx.rollback(); })()));
      }
    }
    await sleep(rand(300)); // some calls done, some waiting
    const closes = stores.map(async (s) => {
      await sleep(rand(30));
      const t0 = performance.now();
      await s.close();
      return performance.now() - t0;
    });
    if (reader !== null && rand(2) === 0) await endReader(reader);
    if (slots !== null && rand(2) === 0) await release(slots);
    const ms = await Promise.all(closes);
    expect(Math.max(...ms), `round ${round}: a close took ${Math.max(...ms).toFixed(0)} ms`).toBeLessThan(CLOSE_MS_AT_MOST);
    for (const o of await Promise.all(calls)) {
      expect(['ok', 'WALNUT_CLOSED/ReadLockWaitCut'], `round ${round}`).toContain(o);
      seen.add(o);
    }
    if (reader !== null) await endReader(reader);
    if (slots !== null && slots.exitCode === null) await release(slots);
    expect(sqliteCli(file, 'PRAGMA wal_checkpoint(TRUNCATE)'), `round ${round}: something is still held`).toBe('0|0|0');
  }
  expect([...seen].sort()).toEqual(['WALNUT_CLOSED/ReadLockWaitCut', 'ok']); // both outcomes came up
  expect(sqliteCli(file, 'PRAGMA integrity_check')).toBe('ok');
});
