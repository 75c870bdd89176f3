// What a replica reports while it retries is a WalnutError with a stable code. After its NATS
// server was killed and restarted (or a cluster lost its stream leader), the replica's reads
// failed with the NATS client's own errors ("timeout", JetStream API errors), which it emitted
// as they were: plain Errors, no code (`walnut replica` printed "walnut replica: timeout", ten
// times in a 3-node cluster whose leader was killed). Now they are WALNUT_IO reason nats, the
// client's error as cause, and the replica goes on as before (it catches up).
// Each of three rounds kills the server, starts it again and wedges it (SIGSTOP) the moment the
// replica, back on it, sends its first JetStream API request (it starts its reading over at a
// reconnect): the request times out, an error each round. The replica reaches the server through
// a relay (ApiRequestGate) that sees that request go by; the server paused a fixed 300 ms after
// its start caught the request in flight in the first round only, now and then (the client was
// either not back yet, its handshake then hung, or done reading: no request, no error).
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import { openReplica } from '../../lib/replicate/replica';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

/**
 * A TCP relay from its own loopback port to a NATS server's. Once armed, it calls `beforeRequest`
 * just before it passes on the first chunk a client sends that publishes to the JetStream API
 * (`PUB $JS.API.`): after the client's handshake (CONNECT and PING go first, alone), before the
 * server can answer. A connection is closed on both sides as soon as either side closes.
 */
class ApiRequestGate {
  readonly #relay: net.Server;
  #armed: (() => void) | null = null;

  constructor(serverPort: number) {
    this.#relay = net.createServer((client) => {
      const server = net.connect(serverPort, '127.0.0.1');
      client.on('data', (chunk) => {
        if (this.#armed !== null && chunk.includes('PUB $JS.API.')) {
          this.#armed();
          this.#armed = null;
        }
        server.write(chunk);
      });
      server.on('data', (chunk) => client.write(chunk));
      for (const [a, b] of [[client, server], [server, client]]) {
        a.on('error', () => b.destroy());
        a.on('close', () => b.destroy());
      }
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#relay.listen(0, '127.0.0.1', resolve));
    return `nats://127.0.0.1:${(this.#relay.address() as net.AddressInfo).port}`;
  }

  /** Resolves once `beforeRequest` ran (at the next JetStream API request through the relay). */
  arm(beforeRequest: () => void): Promise<void> {
    return new Promise((resolve) => {
      this.#armed = () => {
        beforeRequest();
        resolve();
      };
    });
  }

  close(): void {
    this.#relay.close();
  }
}

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('a replica\'s errors while it retries', () => {
  it('are WalnutErrors (WALNUT_IO reason nats) across a server killed, wedged and restarted; the replica catches up', async () => {
    const server = await startNatsServer();
    started.push(server);
    const gate = new ApiRequestGate(server.port);
    const store = await open(path.join(dir, 'p.db'));
    const r = store.replicateTo({ servers: server.url, stream: 'errs', stopTimeoutMs: 60_000 });
    r.on('error', () => undefined);
    await r.ready;
    for (let i = 0; i < 5; i++) await store.commit([{ pgno: 2 + i, data: Buffer.alloc(4096, i + 1) }]);
    let made = 5; // commits made, each in the export's numbering
    const replica = await openReplica(path.join(dir, 'replica.db'), { servers: await gate.listen(), stream: 'errs' });
    const errors: unknown[] = [];
    replica.on('error', (e: unknown) => errors.push(e));
    /** Every commit made published, and the replica at it (its client connected and reading). */
    const caughtUp = async (): Promise<void> => {
      await until(() => r.metrics().publishedSeq >= made, WAIT_MS, () => r.metrics());
      await replica.waitFor(r.metrics().publishedSeq, r.metrics().session);
    };
    const perRound: number[] = [];
    try {
      await caughtUp();
      for (let round = 0; round < 3; round++) {
        const before = errors.length;
        await server.stop('SIGKILL');
        const wedged = gate.arm(() => server.pause()); // wedged right after the client came back: its requests time out
        await server.start();
        await wedged;
        await until(() => errors.length > before, WAIT_MS, () => `round ${round}: no error while the server is wedged`);
        perRound.push(errors.length - before);
        await server.stop('SIGKILL');
        await server.start();
        await store.commit([{ pgno: 2, data: Buffer.alloc(4096, 100 + round) }]);
        made++;
        await caughtUp();
      }
      await r.stop();
      await replica.waitFor(r.metrics().publishedSeq, r.metrics().session);
      console.log(`replica errors: ${perRound.join(' + ')} (rounds) of ${errors.length}: ${[...new Set(errors.map((e) => String(e)))].join(' | ')}`);
      for (const e of errors) {
        expect(e, String(e)).toBeInstanceOf(WalnutError);
        expect(e).toMatchObject({ code: 'WALNUT_IO', reason: 'nats' });
      }
      expect(perRound).toHaveLength(3);
      expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    } finally {
      await replica.close();
      await store.close();
      gate.close();
    }
  }, 90_000);
  it('a server that stops answering while the replica reads (SIGSTOP, the connection kept): the replica says so, WALNUT_IO reason nats, and catches up once it answers', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p2.db'));
    const r = store.replicateTo({ servers: server.url, stream: 'wedged', stopTimeoutMs: 60_000 });
    r.on('error', () => undefined);
    await r.ready;
    const replica = await openReplica(path.join(dir, 'replica2.db'), { servers: server.url, stream: 'wedged' });
    const errors: unknown[] = [];
    replica.on('error', (e: unknown) => errors.push(e));
    try {
      await store.commit([{ pgno: 2, data: Buffer.alloc(4096, 1) }]);
      await until(() => r.metrics().publishedSeq >= 1, WAIT_MS, () => r.metrics());
      await replica.waitFor(r.metrics().publishedSeq, r.metrics().session);
      expect(errors).toEqual([]);
      // the nats.js consumer retries its own requests to a server that stopped answering without
      // a word (its consumer info, each timing out, then a backoff): the replica said nothing
      server.pause();
      try {
        await until(() => errors.length > 0, WAIT_MS, () => 'no error while the server does not answer');
      } finally {
        server.resume();
      }
      for (const e of errors) {
        expect(e, String(e)).toBeInstanceOf(WalnutError);
        expect(e).toMatchObject({ code: 'WALNUT_IO', reason: 'nats' });
      }
      // the watchdog's word names its lookup's own failure, as cause and in its text (0ba1297: it
      // named a silence measured from its last restart, 1-2 s during a long outage, and no cause)
      const silent = errors.filter((e) => /did not answer/.test(String(e)));
      expect(silent.length, String(errors)).toBeGreaterThan(0);
      for (const e of silent) {
        const cause = (e as WalnutError).cause;
        expect(cause, String(e)).toBeInstanceOf(Error);
        expect(String(e)).toContain((cause as Error).message);
      }
      await store.commit([{ pgno: 2, data: Buffer.alloc(4096, 2) }]);
      await until(() => r.metrics().publishedSeq >= 2, WAIT_MS, () => r.metrics());
      await r.stop();
      await replica.waitFor(r.metrics().publishedSeq, r.metrics().session);
      expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    } finally {
      await replica.close();
      await store.close();
    }
  }, 90_000);
});
