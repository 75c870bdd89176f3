// A replica waiting for a base image its stream's retention cut says so. The stream holds 200 KB,
// the database 1.2 MB: the stream drops each base image's first parts while its last are stored,
// so it never holds a whole one (the primary says RetentionTooSmall). A new replica waited for a
// whole base image for ever without a word (openReplica pending, `walnut replica` silent). Now the
// wait is told once: openReplica's onRetry (no 'error' listener before it resolves) gets
// WALNUT_IO reason BaseGone, lag().stalledBy says BaseGone meanwhile, and `walnut replica` prints
// the line on stderr; close() and SIGINT end the wait as before.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import type { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import type { ReplicationHandle } from '../../lib/replicate/publisher';
import { Replica } from '../../lib/replicate/replica';
import type { Store } from '../../lib/commit/store';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const started: NatsNode[] = [];
let store: Store | null = null;
let publisher: ReplicationHandle | null = null;
afterAll(async () => {
  await publisher?.stop();
  await store?.close();
  await stopNats(started);
});

/** A primary of 1.2 MB replicating into a stream of 200 KB, once the publisher said its retention cut a base image. */
async function primaryOfTooSmallStream(stream: string): Promise<string> {
  const server = await startNatsServer();
  started.push(server);
  store = await open(path.join(dir, 'p.db'));
  await store.commit(Array.from({ length: 300 }, (_, k) => ({ pgno: 2 + k, data: Buffer.alloc(4096, (k * 7 + 1) & 0xff) })));
  publisher = store.replicateTo({ servers: server.url, stream, maxBytes: 200_000, maxMessageBytes: 65_536 });
  const errors: WalnutError[] = [];
  publisher.on('error', (e: WalnutError) => errors.push(e));
  await publisher.ready;
  await until(() => errors.some((e) => e.reason === 'RetentionTooSmall'), 15_000, () => publisher!.metrics());
  return server.url;
}

describe.skipIf(NATS_SKIP !== null)('a replica waiting for a base image its stream\'s retention cut', () => {
  it('is told once (onRetry WALNUT_IO BaseGone, lag().stalledBy), and `walnut replica` prints it', async () => {
    const url = await primaryOfTooSmallStream('gone');
    const told: WalnutError[] = [];
    const replica = new Replica(path.join(dir, 'replica.db'), { servers: url, stream: 'gone', onRetry: (e) => told.push(e) });
    const opening = replica.start().then(() => null, (e: WalnutError) => e);
    try {
      await until(() => told.length > 0, 10_000, () => replica.lag());
      expect(told.map((e) => `${e.code} ${e.reason}`)).toEqual(['WALNUT_IO BaseGone']);
      expect(told[0]!.message).toMatch(/newest base image \(commit \d+ of session [^)]+\) lost a part/);
      expect(replica.lag().stalledBy).toBe('BaseGone');
      await new Promise((r) => setTimeout(r, 1000)); // (once: not per look at the stream)
      expect(told).toHaveLength(1);
    } finally {
      await replica.close();
    }
    expect((await opening)?.code).toBe('WALNUT_CLOSED');

    const sub = fs.mkdtempSync(path.join(dir, 'cli-'));
    const child = spawn(process.execPath, [bin, 'replica', path.join(sub, 'replica.db'), '--nats', url, '--stream', 'gone', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<[number | null, string | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
    try {
      await until(() => stderr.includes('\n') || child.exitCode !== null, 10_000, () => stderr);
    } finally {
      child.kill('SIGINT');
    }
    expect(stderr).toMatch(/^walnut replica: WALNUT_IO: the stream's newest base image \(commit \d+ of session [^)]+\) lost a part \(no longer in the stream gone[^\n]*\n/);
    expect(await exited).toEqual([null, 'SIGINT']);
    expect(fs.readdirSync(sub)).toEqual([]);
  }, 40_000);
});
