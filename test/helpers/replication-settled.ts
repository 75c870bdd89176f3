// Replication tests' end points: waiting until everything committed is in the stream, and the
// stream restored and compared with the primary page for page.
import * as path from 'node:path';
import { expect } from 'vitest';

import { open, type Store } from '../../lib/commit/store';
import type { ReplicationHandle, ReplicationMetrics } from '../../lib/replicate/publisher';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { pageHashes } from './page-hashes';
import { until } from './until';

/**
 * Waits until every commit exported is stored, at least `atLeast` of them, nothing is behind the
 * export and no lag is reported. `atLeast` matters: metrics() is the worker's latest report, and
 * the store's thread can see every record handed over and acknowledged before the report of
 * their publication arrives (publishedSeq = exportedSeq a few commits short then).
 */
export async function settled(r: ReplicationHandle, atLeast = -1): Promise<ReplicationMetrics> {
  await until(() => {
    const m = r.metrics();
    return m.publishedSeq >= atLeast && m.publishedSeq === m.exportedSeq && m.exportBehindBytes === 0 && m.lagCommits === 0;
  }, 120_000, () => r.metrics());
  return r.metrics();
}

/** The stream restored into `<dir>/<stream>-restored.db`, page for page the primary's newest state. */
export async function expectRestored(url: string, stream: string, store: Store, dir: string): Promise<void> {
  const restored = path.join(dir, `${stream}-restored.db`);
  await restoreFromNats(restored, { servers: url, stream });
  const copy = await open(restored);
  try {
    expect(await pageHashes(copy)).toEqual(await pageHashes(store));
  } finally {
    await copy.close();
  }
}
