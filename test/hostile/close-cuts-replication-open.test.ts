// store.close() while its replication's worker (store.replicateTo, on a worker thread: the
// default) is still opening its own connection to the database (replicate/worker.ts: base
// images, checkpoints) and that open waits to read a torn wal-index header (its two copies
// differ) that another connection must first let go of or recover: another process holds WRITE
// (a writer stopped between its copies), or RECOVER (a recovery in progress), or the closing
// store itself holds WRITE (its write lease). Busy timeout 20 s, a real nats-server.
// close() waited for that open the rest of the busy timeout (19.8 s; with a shorter
// stopTimeoutMs + 15 s, the worker was terminated), and the replication then ended with an
// 'error' WALNUT_BUSY BusyRecovery. Now close() cuts the worker connection's waits as it cuts its
// own (WalIndex LockWaitCut, ReplicationThread.cutLockWaits): it settles within CLOSE_MS_AT_MOST
// (an honest, generous bound; ~60 ms measured), the replication ends as one stopped before it
// began (ready rejects WALNUT_CLOSED, reason RecoveryWaitCut; 'end' once; no 'error'), no
// unhandled rejection, the process holds no descriptor more than before, and nothing is left
// held: once the other process let go, sqlite3 checkpoints the WAL whole and takes WRITE at once,
// and a fresh store reads and commits.
import * as fs from 'node:fs';

import { afterAll, describe, expect, it } from 'vitest';

import { open, type Store } from '../../lib/commit/store';
import { SHM_LOCK } from '../../lib/format/shm-header';
import { holdLock, release } from '../helpers/children';
import { BUSY_TIMEOUT_MS, CLOSE_MS_AT_MOST, newCutDatabase, nothingHeld, outcome, page1WithUserVersion, sleep, tearHeader } from '../helpers/close-cut';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);
expectNoUnhandledRejections();

/** Well into the worker's open (it starts, loads, opens; its header retries sleep up to 100 ms each). */
const INTO_THE_WAIT_MS = 700;

const dir = tmpDir();
let server: NatsNode | null = null;
afterAll(() => stopNats([server]));
let streams = 0;

/** This process's open descriptors (the worker thread's included). */
const descriptors = (): number => fs.readdirSync('/proc/self/fd').length;

/** Descriptors back to `before` (a closed one may be let go a moment later: the I/O lane's close). */
async function descriptorsBackTo(before: number): Promise<void> {
  for (let i = 0; i < 50 && descriptors() > before; i++) await sleep(20);
  expect(descriptors(), 'descriptors after the close').toBeLessThanOrEqual(before);
}

describe.skipIf(NATS_SKIP !== null)("close() cuts its replication worker's open waiting for a torn wal-index header (busyTimeout 20 s)", () => {
  for (const held of ['WRITE held by another process', 'RECOVER held by another process', "the closing store's write lease"] as const) {
    it(`${held}: close() settles at once, ready rejects WALNUT_CLOSED RecoveryWaitCut, 'end' once, no 'error', no descriptor left, nothing held`, async () => {
      server ??= await startNatsServer();
      const file = newCutDatabase(dir);
      const before = descriptors();
      const store: Store = await open(file, { busyTimeout: BUSY_TIMEOUT_MS, shareLane: false, autoCheckpoint: false });
      try {
        await store.commit([{ pgno: 1, data: await page1WithUserVersion(store, 3) }]);
        const byte = held === 'RECOVER held by another process' ? SHM_LOCK.RECOVER : SHM_LOCK.WRITE;
        if (held === "the closing store's write lease") await store.holdWriteLease();
        const holder = held === "the closing store's write lease" ? null : await holdLock(`${file}-shm`, byte, 1, 'exclusive');
        try {
          tearHeader(file);
          const r = store.replicateTo({ servers: server.url, stream: `cut${streams++}` });
          const errors: string[] = [];
          let ends = 0;
          r.on('error', (e: Error) => errors.push(e.message));
          r.on('end', () => ends++);
          const ready = outcome(r.ready);
          await sleep(INTO_THE_WAIT_MS);
          expect(ends, 'the worker is still opening').toBe(0);
          const t0 = performance.now();
          await store.close();
          const ms = performance.now() - t0;
          expect(ms, `close() took ${ms.toFixed(0)} ms`).toBeLessThan(CLOSE_MS_AT_MOST);
          expect(await ready).toBe('WALNUT_CLOSED/RecoveryWaitCut');
          await sleep(20); // ('end' is emitted once the worker has exited: close() waited for it)
          expect(ends, "'end' once").toBe(1);
          expect(errors).toEqual([]);
        } finally {
          if (holder !== null) await release(holder);
        }
      } finally {
        await store.close();
      }
      await descriptorsBackTo(before);
      await nothingHeld(file, 3);
    });
  }
});
