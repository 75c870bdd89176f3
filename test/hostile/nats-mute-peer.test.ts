// A NATS URL whose peer takes the TCP connection and says nothing (not a NATS server: an HTTP or
// database port, a server hung before its INFO). nats-core gives the attempt up after its 2 s
// timeout and closes the transport, which @nats-io/transport-node 3.4.0 ignores for a transport
// that never connected: the socket stayed open. `walnut restore --nats` printed "cannot reach
// NATS at ...: timeout" and then never exited (the socket kept the process alive), and a
// client retrying (openReplica for connectTimeoutMs, a publisher for ever) kept one more socket
// open every attempt. Now a failed attempt's socket is closed (nats.ts closeFailedConnects):
// the command exits 2 after its one line, and the peer sees every connection closed.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { WalnutError } from '../../lib/errors';
import { openReplica } from '../../lib/replicate/replica';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');

/** A TCP server on 127.0.0.1 that accepts connections and never writes; counts those open. */
async function mutePeer(): Promise<{ url: string; open: () => number; accepted: () => number; close: () => void }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return { url: `nats://127.0.0.1:${port}`, open: () => sockets.size, accepted: () => accepted, close: () => { for (const s of sockets) s.destroy(); server.close(); } };
}

const peers: { close: () => void }[] = [];
afterAll(() => peers.forEach((p) => p.close()));

describe('a NATS URL whose peer never speaks', () => {
  it('walnut restore --nats exits 2 with one line (it printed the line and never exited)', async () => {
    const peer = await mutePeer();
    peers.push(peer);
    const db = path.join(dir, 'restored.db');
    const child = spawn(process.execPath, [bin, 'restore', '--nats', peer.url, '--stream', 'app', db], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const outcome = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(resolve, 8000, 'still running').unref())]);
    if (outcome === 'still running') child.kill('SIGKILL');
    expect([outcome, stderr]).toEqual([2, `walnut: WALNUT_IO: cannot reach NATS at ${peer.url}: timeout\n`]);
    expect(fs.existsSync(db)).toBe(false);
  }, 20_000);

  it('openReplica retrying it leaves no connection open (one was left per attempt)', async () => {
    const peer = await mutePeer();
    peers.push(peer);
    const failure = await openReplica(path.join(dir, 'replica.db'), { servers: peer.url, stream: 'app', connectTimeoutMs: 3000 }).then(() => null, (e: unknown) => e);
    expect(failure).toBeInstanceOf(WalnutError);
    expect(failure).toMatchObject({ code: 'WALNUT_IO' });
    expect(peer.accepted()).toBeGreaterThan(0);
    await until(() => peer.open() === 0, 3000, () => ({ open: peer.open(), accepted: peer.accepted() }));
  }, 20_000);
});
