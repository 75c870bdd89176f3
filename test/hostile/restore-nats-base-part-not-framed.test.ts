// restoreFromNats over a stream whose only base image is a message with walnut's headers
// (Walnut-Session, Walnut-Base-Final, ...) and a body that is no export stream fragment: forged
// by another client, or damaged in storage. It failed WALNUT_INVALID_FRAMING "HeaderMissing:
// the stream ends before its 8-byte ARKHEXP1 header (7 bytes)", read as if the JetStream stream
// had ended, naming nothing to look at. Now the same code and reason name the message, the part
// and the base image's commit; nothing is left at the path.
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

describe.skipIf(NATS_SKIP !== null)('restoreFromNats, a base image part that is no export fragment', () => {
  it('fails WALNUT_INVALID_FRAMING naming the message (it read as the stream\'s end)', async () => {
    const server = await startNatsServer();
    started.push(server);
    const { connect, headers } = await import('@nats-io/transport-node');
    const { jetstream, jetstreamManager } = await import('@nats-io/jetstream');
    const nc = await connect({ servers: server.url });
    await (await jetstreamManager(nc)).streams.add({ name: 'forged', subjects: ['walnut.forged.>'] });
    const h = headers();
    for (const [k, v] of [['Walnut-Session', 'abc'], ['Walnut-Base-Seq', '7'], ['Walnut-Base-Time', String(Date.now())], ['Walnut-Base-Part', '0'], ['Walnut-Base-Final', '1']]) h.set(k!, v!);
    await jetstream(nc).publish('walnut.forged.base', 'garbage', { headers: h });
    await nc.close();
    const file = path.join(dir, 'restored.db');
    const e = await restoreFromNats(file, { servers: server.url, stream: 'forged' }).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(WalnutError);
    expect(e).toMatchObject({ code: 'WALNUT_INVALID_FRAMING', reason: 'HeaderMissing' });
    expect((e as Error).message).toMatch(/^WALNUT_INVALID_FRAMING: message 1 of the JetStream stream forged \(part 0 of the base image of commit 7\) is no export stream fragment: HeaderMissing/);
    expect(fs.readdirSync(dir)).toEqual([]);
  }, 20_000);
});
