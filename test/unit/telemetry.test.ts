// Telemetry: diagnostics_channel events counted against a known workload, the event ring,
// Prometheus text, and the histogram's percentiles.
import diagnostics from 'node:diagnostics_channel';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { bucketOf, Histogram } from '../../lib/telemetry/histogram';
import { expectWalnutError } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('telemetry', () => {
  it('publishes one walnut:commit per batch, walnut:checkpoint and walnut:recovery', async () => {
    const seen: Record<string, Record<string, unknown>[]> = { commit: [], checkpoint: [], recovery: [] };
    const subs = Object.keys(seen).map((name) => {
      const fn = (m: unknown) => seen[name]!.push(m as Record<string, unknown>);
      diagnostics.subscribe(`walnut:${name}`, fn);
      return () => diagnostics.unsubscribe(`walnut:${name}`, fn);
    });
    try {
      const db = path.join(dir, 't.db');
      const store = await open(db, { keepWal: true, autoCheckpoint: false });
      await Promise.all(Array.from({ length: 100 }, (_, i) => store.commit([{ pgno: 2 + i, data: Buffer.alloc(4096, i) }])));
      await store.commit([{ pgno: 2, data: Buffer.alloc(4096, 9) }]);
      const m = store.metrics();
      expect(seen.commit!.reduce((s, e) => s + (e['commits'] as number), 0)).toBe(101);
      expect(seen.commit).toHaveLength(m.batches);
      await store.checkpoint('truncate');
      expect(seen.checkpoint).toHaveLength(1);
      expect(seen.checkpoint![0]).toMatchObject({ mode: 'truncate', busy: false, walFrames: 0 });
      expect(store.recentEvents().map((e) => e.name)).toEqual(['recovery', 'checkpoint']); // commits are published, not kept; the open's recovery is kept
      const text = store.metrics({ format: 'prometheus' });
      expect(text).toContain('walnut_commits_total 101');
      expect(text).toContain(`walnut_batches_total ${m.batches}`);
      expect(text).toMatch(/walnut_commit_seconds\{quantile="0.99"\} [0-9.e-]+/);
      expect(store.metrics({ format: 'object' })).toMatchObject({ commits: 101 });
      // a format it does not know is refused, not answered with the object (a scrape would serve "[object Object]")
      for (const bad of ['prometheus', { format: 'text' }, { fromat: 'prometheus' }]) {
        expectWalnutError(() => store.metrics(bad as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      }
      await store.close();
      // reopening a database whose -shm is gone recovers, and says so
      const again = await open(db, { keepWal: true });
      await again.close();
      expect(seen.recovery!.length).toBe(2); // the first open and the reopen both rebuilt the -shm
      expect(seen.recovery![1]).toMatchObject({ frames: 0 }); // after the truncate checkpoint
    } finally {
      for (const u of subs) u();
    }
  });

  it('histogram percentiles are within the bucket resolution', () => {
    const h = new Histogram();
    for (let i = 1; i <= 10000; i++) h.record(i);
    const s = h.summary();
    expect(s.count).toBe(10000);
    expect(s.min).toBe(1);
    expect(s.max).toBe(10000);
    expect(Math.abs(s.p50 - 5000) / 5000).toBeLessThan(0.07);
    expect(Math.abs(s.p99 - 9900) / 9900).toBeLessThan(0.07);
    expect(s.mean).toBeCloseTo(5000.5, 5);
  });

  it('a value lands in its log-linear bucket: 16 per power of two, exactly at the edges', () => {
    // the definition, by exact arithmetic: v in [2^e, 2^(e+1)) with e >= 4 is in sub-bucket
    // floor((v - 2^e) / 2^(e-4)) of power e
    const expected = (v: number): number => {
      if (v < 16) return Math.floor(v);
      let e = 4;
      while (2 ** (e + 1) <= v) e++;
      return Math.min(1023, 16 + (e - 4) * 16 + Math.floor((v - 2 ** e) / 2 ** (e - 4)));
    };
    const values = [0, 0.5, 1, 15, 15.999, 16, 16.5, 17, 31.999, 32, 33, 1000, 1023.9, 1024, 65535, 65536, 2 ** 29 + 1, 2 ** 30 - 1, 2 ** 30, 2 ** 30 + 0.5, 2 ** 31, 2 ** 40 + 3, 1e15];
    for (let e = 4; e < 34; e++) values.push(2 ** e - 2 ** (e - 30), 2 ** e, 2 ** e + 2 ** (e - 5), 2 ** e * 1.999);
    for (let i = 0; i < 20000; i++) values.push(Math.random() * 2 ** (i % 36));
    for (const v of values) expect([v, bucketOf(v)]).toEqual([v, expected(v)]);
  });
});
