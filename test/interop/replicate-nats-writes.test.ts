// replicate/nats.ts writeWithoutCopy: the NATS client's flushes go to the socket as the pieces
// published (protocol line, headers, body, CRLF), corked into one writev, instead of being
// packed into one fresh Uint8Array first (nats-core's DataBuffer.pack copied every byte
// published into new memory: 5-9% of the replication worker's busy time). Asserted against a
// real nats-server: the socket is handed the message body's own memory (before: a copy), and
// the stream stores exactly the bytes and headers published, for messages published in one
// turn (one flush of several) and in turns of their own, small and near the server's 1 MiB
// max_payload.
import { afterAll, describe, expect, it } from 'vitest';

import { connectNats, type NatsLink } from '../../lib/replicate/nats';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)(`NATS client writes${NATS_SKIP ? ` (skipped: ${NATS_SKIP})` : ''}`, () => {
  it('a published body reaches the socket without a copy, and the stream stores every message\'s exact bytes', async () => {
    const server = await startNatsServer();
    started.push(server);
    const link: NatsLink = await connectNats([server.url], () => true, 'walnut test');
    try {
      await link.jsm.streams.add({ name: 'w', subjects: ['w.>'] });
      const socket = (link.nc as unknown as { protocol: { transport: { socket: { write: (b: Uint8Array, ...rest: unknown[]) => boolean } } } }).protocol.transport.socket;
      const written: Uint8Array[] = [];
      const write = socket.write;
      socket.write = function (this: unknown, b: Uint8Array, ...rest: unknown[]) {
        written.push(b);
        return write.call(this, b, ...rest);
      };
      const body = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
      const sizes = [1, 4096, 300_000, 1000, 1_000_000];
      const bodies = sizes.map((n, i) => body(n, i));
      const publish = (b: Uint8Array, i: number): Promise<{ seq: number }> => {
        const h = link.headers();
        h.set('Walnut-Test', String(i));
        return link.js.publish(`w.${i}`, b, { msgID: `m${i}`, headers: h });
      };
      // three in one turn of the event loop (one flush), then two in turns of their own
      const acks = await Promise.all(bodies.slice(0, 3).map(publish));
      acks.push(await publish(bodies[3]!, 3), await publish(bodies[4]!, 4));
      for (const b of bodies) expect(written.some((w) => w.buffer === b.buffer)).toBe(true); // its own memory: not packed into a copy
      for (let i = 0; i < bodies.length; i++) {
        const m = (await link.jsm.streams.getMessage('w', { seq: acks[i]!.seq }))!;
        expect(m.subject).toBe(`w.${i}`);
        expect(m.header.get('Walnut-Test')).toBe(String(i));
        expect(Buffer.from(m.data).equals(Buffer.from(bodies[i]!))).toBe(true);
      }
    } finally {
      await link.nc.close();
    }
  });
});
