// Real nats-server processes for the replication tests: one JetStream server, or a 3-node
// cluster (routes between them, JetStream in each), on 127.0.0.1 ports chosen free (started
// again on new ones if a port was taken before the server bound it), ready when the server says
// so on its stderr, storage in a temporary directory. Installed by scripts/install-nats.sh (Debian's nats-server 2.9);
// when it is absent, NATS_SKIP says why and the tests skip with that message.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

import { connectNats, lastMessageOn } from '../../lib/replicate/nats';
import type { Replica } from '../../lib/replicate/replica';
import { tmpDir } from './tmp';
import { WAIT_MS } from './until';

/** The nats-server binary (PATH, or /usr/sbin where Debian puts it), or null. */
export const NATS_SERVER: string | null = (() => {
  for (const dir of [...(process.env['PATH'] ?? '').split(':'), '/usr/sbin', '/usr/local/sbin']) {
    const file = path.join(dir, 'nats-server');
    if (dir !== '' && fs.existsSync(file) && spawnSync(file, ['--version']).status === 0) return file;
  }
  return null;
})();

/** Null when servers can be started, else the reason the replication tests skip. */
export const NATS_SKIP: string | null =
  NATS_SERVER === null ? 'nats-server is not installed (run scripts/install-nats.sh as root, or apt-get install nats-server): replication tests skipped' : null;

/**
 * A NATS URL where no server ever answers: port 1 is privileged and outside the ephemeral range
 * freePort() draws from, so no test's nats-server takes it. A port from freePort() that a test
 * meant to leave unanswered was free only when drawn: another file's server, started in parallel,
 * could bind it next and answer (cli-replicate-interrupted-unpublished then published and exited 0).
 */
export const NOBODY_ANSWERS = 'nats://127.0.0.1:1';

/** A free TCP port on 127.0.0.1 (bound and released; the server binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Resolves once the server says on its own stderr that it is ready (it listens then), rejects
 * once it exits (e.g. its port was taken meanwhile) or after `ms`. Not a TCP probe of the port:
 * another process that took the port between freePort() and the server's bind (the other test
 * fork's servers and clients use the same ephemeral range) would have passed for it.
 */
function untilReady(child: ChildProcess, ms: number, log: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`nats-server was not ready within ${ms} ms: ${log()}`)), ms);
    const onData = (): void => {
      if (log().includes('Server is ready')) done(null);
    };
    const onExit = (code: number | null): void => done(new Error(`nats-server exited with ${code}: ${log()}`));
    function done(e: Error | null): void {
      clearTimeout(timer);
      child.stderr!.off('data', onData);
      child.off('exit', onExit);
      if (e === null) resolve();
      else reject(e);
    }
    child.stderr!.on('data', onData);
    child.once('exit', onExit);
  });
}

/** One nats-server process; stop() and start() again keep its ports and storage. */
export class NatsNode {
  #child: ChildProcess | null = null;
  #log = '';
  constructor(readonly port: number, readonly args: string[], readonly storeDir: string) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#child !== null && this.#child.exitCode === null;
  }

  async start(): Promise<void> {
    this.#log = '';
    const child = spawn(NATS_SERVER!, ['-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.storeDir, ...this.args], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => {
      this.#log = (this.#log + d.toString()).slice(-4000);
    });
    this.#child = child;
    await untilReady(child, 60_000, () => this.#log);
  }

  /** SIGKILL (a crash) by default, SIGTERM for a clean stop; resolves once the process is gone. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    this.#child = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }

  /** SIGSTOP: the server keeps its connections and answers nothing (a wedged server); stop() still kills it. */
  pause(): void {
    this.#child?.kill('SIGSTOP');
  }

  /** SIGCONT: a paused server answers again. */
  resume(): void {
    this.#child?.kill('SIGCONT');
  }

  get log(): string {
    return this.#log;
  }
}

/**
 * `start()` again on new ports when a port freePort() gave was taken before the server bound it
 * (the server exits: 'address already in use'); other failures are thrown at once.
 */
async function onFreePorts<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (e) {
      if (attempt === 5 || !/address already in use/.test(String(e))) throw e;
    }
  }
}

/** A single JetStream server on a free loopback port. */
export function startNatsServer(): Promise<NatsNode> {
  return onFreePorts(async () => {
    const node = new NatsNode(await freePort(), [], tmpDir('walnut-nats-'));
    await node.start();
    return node;
  });
}

/** Three JetStream servers routed into one cluster (stream replicas R=3 possible once all joined). */
export function startNatsCluster(): Promise<NatsNode[]> {
  return onFreePorts(async () => {
    const ports = await Promise.all([0, 1, 2].map(async () => ({ client: await freePort(), route: await freePort() })));
    const routes = ports.map((p) => `nats-route://127.0.0.1:${p.route}`).join(',');
    const nodes = ports.map((p, i) =>
      new NatsNode(p.client, ['-n', `n${i}`, '--cluster_name', 'walnut', '--cluster', `nats://127.0.0.1:${p.route}`, '--routes', routes], tmpDir(`walnut-nats-n${i}-`)),
    );
    const started = await Promise.allSettled(nodes.map((n) => n.start()));
    const failed = started.find((r) => r.status === 'rejected');
    if (failed !== undefined) {
      await stopNats(nodes);
      throw failed.reason;
    }
    return nodes;
  });
}

/** Stops every node (SIGKILL). */
export async function stopNats(nodes: readonly (NatsNode | null | undefined)[]): Promise<void> {
  await Promise.all(nodes.map((n) => n?.stop()));
}

/**
 * Resolves once the replica applied commit `seq` of `session`; rejects at its first 'error' (a
 * replica that cannot apply a commit reports it and retries or re-bases, over and over, and
 * its waitFor would wait for the test's timeout).
 */
export function appliedOrError(replica: Replica, seq: number, session: string | null): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(new Error(`${replica.path}: ${e.message}`));
    replica.on('error', onError);
    replica.waitFor(seq, session).then(() => {
      replica.off('error', onError);
      resolve();
    }, reject);
  });
}

/**
 * Resolves once `stream` holds no message on `subject` (a stream with a max age dropped them),
 * polling every 50 ms; past WAIT_MS it throws. A wait on the retention itself, where the tests
 * slept for a few max ages.
 */
export async function untilAgedOut(server: string, stream: string, subject: string): Promise<void> {
  const link = await connectNats([server], () => false, 'test');
  try {
    const deadline = Date.now() + WAIT_MS;
    while ((await lastMessageOn(link, stream, subject)) !== null) {
      if (Date.now() > deadline) throw new Error(`${stream} still holds messages on ${subject} after ${WAIT_MS} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await link.nc.close();
  }
}
