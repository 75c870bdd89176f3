// r.stop() of a replication (store.replicateTo, on a worker thread: the default) whose worker is
// still opening its own connection to the database (replicate/worker.ts) while that open waits to
// read a torn wal-index header (its two copies differ) that another connection must first let go
// of or recover: another process holds WRITE or RECOVER, or the store itself holds WRITE (its
// write lease). Busy timeout 20 s, a real nats-server. close() cut that open
// (test/hostile/close-cuts-replication-open), but stop() did not: it waited the rest of the busy
// timeout (or stopTimeoutMs + 15 s, then terminated the worker) and the replication ended with an
// 'error' (WALNUT_BUSY BusyRecovery, or WALNUT_IO WorkerExited). Now a stop() that finds the worker
// opening cuts that open's waits as close() does (the worker's LockWaitCut): stop() settles within
// CLOSE_MS_AT_MOST (an honest, generous bound), the replication ends as one stopped before it
// began (ready rejects WALNUT_CLOSED, reason RecoveryWaitCut; 'end' once; no 'error'), the store
// stays open and commits once the other process let go, and nothing is left held.
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

describe.skipIf(NATS_SKIP !== null)("stop() cuts its replication worker's open waiting for a torn wal-index header (busyTimeout 20 s)", () => {
  for (const held of ['WRITE held by another process', 'RECOVER held by another process', "the store's own write lease"] as const) {
    it(`${held}: stop() settles at once, ready rejects WALNUT_CLOSED RecoveryWaitCut, 'end' once, no 'error'; the store stays open and commits`, async () => {
      server ??= await startNatsServer();
      const file = newCutDatabase(dir);
      const store: Store = await open(file, { busyTimeout: BUSY_TIMEOUT_MS, shareLane: false, autoCheckpoint: false });
      try {
        await store.commit([{ pgno: 1, data: await page1WithUserVersion(store, 3) }]);
        const lease = held === "the store's own write lease";
        if (lease) await store.holdWriteLease();
        const holder = lease ? null : await holdLock(`${file}-shm`, held === 'RECOVER held by another process' ? SHM_LOCK.RECOVER : SHM_LOCK.WRITE, 1, 'exclusive');
        try {
          tearHeader(file);
          // (stopTimeoutMs short: stop() waited it + 15 s, then terminated the worker)
          const r = store.replicateTo({ servers: server.url, stream: `stopcut${streams++}`, stopTimeoutMs: 1000 });
          const errors: string[] = [];
          let ends = 0;
          r.on('error', (e: Error) => errors.push(e.message));
          r.on('end', () => ends++);
          const ready = outcome(r.ready);
          await sleep(INTO_THE_WAIT_MS);
          expect(ends, 'the worker is still opening').toBe(0);
          const t0 = performance.now();
          await r.stop();
          const ms = performance.now() - t0;
          expect(await ready).toBe('WALNUT_CLOSED/RecoveryWaitCut');
          expect(errors).toEqual([]);
          expect(ms, `stop() took ${ms.toFixed(0)} ms`).toBeLessThan(CLOSE_MS_AT_MOST);
          await sleep(20);
          expect(ends, "'end' once").toBe(1);
        } finally {
          if (holder !== null) await release(holder);
        }
        if (lease) store.releaseWriteLease();
        await store.commit([{ pgno: 1, data: await page1WithUserVersion(store, 4) }]); // the store goes on (it recovers the torn header)
      } finally {
        await store.close();
      }
      await nothingHeld(file, 4);
    }, 60_000);
  }
});
