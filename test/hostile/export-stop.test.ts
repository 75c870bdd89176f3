// An export's stop() beside a sink that never settles (a network peer that stopped reading
// without an error) waited forever: stop({ timeoutMs }) bounds it, cutting the export.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import type { WalRecordSink } from '../../lib/export/framing';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const page = (v: number) => Buffer.alloc(4096, v);

describe('exportTo(...).stop({ timeoutMs })', () => {
  it('a sink that never settles: stop rejects WALNUT_IO StopTimeout, the export lets its snapshot go, the store goes on', async () => {
    const store = await open(path.join(dir, 'stalled.db'), { autoCheckpoint: 100 });
    try {
      await store.commit([{ pgno: 2, data: page(1) }]);
      let calls = 0;
      const stalled: WalRecordSink = {
        appendRecord: () => {
          calls++;
          return new Promise<void>(() => undefined);
        },
        flush: () => new Promise<void>(() => undefined),
      };
      const handle = store.exportTo(stalled, { follow: true });
      await expectRejectsWalnut(handle.stop({ timeoutMs: 50 }), 'WALNUT_IO', { reason: 'StopTimeout' });
      await expectRejectsWalnut(handle.done, 'WALNUT_IO', { reason: 'StopTimeout' });
      expect(calls).toBeGreaterThan(0);
      expect(store.metrics().wal.pinnedBy).toBeNull(); // no snapshot of the export left
      // the WAL restarts again: nothing holds it
      for (let i = 0; i < 250; i++) await store.commit([{ pgno: 2 + (i % 5), data: page(i) }]);
      expect(store.metrics().walFrames).toBeLessThan(250);
      // a healthy export on the same store still ends with stop() and a timeout it does not need
      const records: Uint8Array[] = [];
      const ok = store.exportTo({ appendRecord: async (r) => void records.push(r), flush: async () => undefined }, { follow: true });
      const stats = await ok.stop({ timeoutMs: 60_000 });
      expect(stats.records).toBe(records.length);
      expect(stats.records).toBeGreaterThan(1);
    } finally {
      await store.close();
    }
  });

  it('stop() options it does not take are refused before anything stops', async () => {
    const store = await open(path.join(dir, 'options.db'));
    try {
      const records: Uint8Array[] = [];
      const handle = store.exportTo({ appendRecord: async (r) => void records.push(r), flush: async () => undefined }, { follow: true });
      for (const bad of [{ timeoutMs: 0 }, { timeoutMs: 1.5 }, { timeoutMs: 2 ** 31 }, { timeout: 5 }, 5, 5000n]) {
        await expectRejectsWalnut(handle.stop(bad as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      }
      await handle.stop();
    } finally {
      await store.close();
    }
  });

  // stop('SIGTERM') was refused as options: the export went on, and the promise the signal
  // handler dropped rejected unhandled. A verb that ends something takes any callback argument.
  it('stop() handed over as a callback (a signal name, a boolean, null) ends the export', async () => {
    const store = await open(path.join(dir, 'callback.db'));
    try {
      for (const arg of ['SIGTERM', true, false, null, Symbol('x')]) {
        await store.commit([{ pgno: 2, data: page(1) }]);
        const records: Uint8Array[] = [];
        const handle = store.exportTo({ appendRecord: async (r) => void records.push(r), flush: async () => undefined }, { follow: true });
        const stats = await (handle.stop as (a: unknown) => Promise<{ records: number }>).call(handle, arg);
        expect(stats.records).toBe(records.length);
        await handle.done;
      }
      // as a signal handler: process.once('SIGTERM', handle.stop.bind(handle)) passes the name
      const handle = store.exportTo({ appendRecord: async () => undefined, flush: async () => undefined }, { follow: true });
      const onSignal = handle.stop.bind(handle) as unknown as (signal: string) => Promise<unknown>;
      await onSignal('SIGTERM');
      await handle.done;
    } finally {
      await store.close();
    }
  });
});
