// restoreFromNats (walnut restore --nats) on a JetStream stream that exists but does not take
// walnut's subjects (walnut.<stream>.>): another application's stream that happens to have the
// name. replicateTo and openReplica refuse such a stream (WALNUT_INVALID_ARGUMENT reason
// stream); the restore asked the server for a consumer on walnut.<stream>.base, which the
// server refused ("consumer filter subject is not a valid subset of the interest subjects"),
// asked again for 30 s, then failed WALNUT_IO reason nats "did not give a consumer of its base
// images": a 30 s wait and a message that points at the server. Now it is refused at once, as
// the others refuse it, and nothing is left at the path.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { WalnutError } from '../../lib/errors';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('restoreFromNats on a stream without walnut\'s subjects', () => {
  it('is refused with WALNUT_INVALID_ARGUMENT reason stream, at once (it waited 30 s, then WALNUT_IO)', async () => {
    const server = await startNatsServer();
    started.push(server);
    const { connect } = await import('@nats-io/transport-node');
    const { jetstream, jetstreamManager } = await import('@nats-io/jetstream');
    const nc = await connect({ servers: server.url });
    await (await jetstreamManager(nc)).streams.add({ name: 'orders', subjects: ['orders.>'] });
    await jetstream(nc).publish('orders.new', 'an order');
    await nc.close();
    const file = path.join(dir, 'restored.db');
    const outcome = await Promise.race([
      restoreFromNats(file, { servers: server.url, stream: 'orders' }).then(() => 'restored', (e: unknown) => e),
      new Promise<string>((resolve) => setTimeout(resolve, 8000, 'still waiting').unref()),
    ]);
    expect(outcome).toBeInstanceOf(WalnutError);
    expect(outcome).toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'stream' });
    expect((outcome as Error).message).toContain('walnut.orders.>');
    expect(fs.readdirSync(dir)).toEqual([]);
  }, 40_000);
});
