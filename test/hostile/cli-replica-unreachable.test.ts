// `walnut replica` whose NATS server does not answer says so at once on stderr, naming the URL
// and that it keeps retrying, as `walnut replicate` does (the same line: openReplica's onRetry,
// told by the same connection code as the publisher's 'error'); it said nothing for the 30 s
// openReplica retries before it gives up (exit 2). A server that comes up while it retries is
// reached: the replica is created from the stream and catches up with every commit, those made
// before the server was there included. openReplica's onRetry itself: told WALNUT_IO reason
// Unreachable naming the servers, the connectTimeoutMs bound kept, a non-function refused.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import type { WalnutError } from '../../lib/errors';
import type { ReplicationHandle } from '../../lib/replicate/publisher';
import { openReplica } from '../../lib/replicate/replica';
import { openDatabase, type Database as WalnutDatabase } from '../../lib/sql/database';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { freePort, NATS_SKIP, NOBODY_ANSWERS, NatsNode, stopNats } from '../helpers/nats';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const servers: NatsNode[] = [];
afterAll(() => stopNats(servers));

/** `walnut replica` in a child process, its stdout (lag JSON lines) and stderr gathered. */
function spawnReplica(url: string, stream: string, db: string): { child: ChildProcess; out: { stdout: string; stderr: string }; exited: Promise<[number | null, string | null]> } {
  const child = spawn(process.execPath, [bin, 'replica', db, '--nats', url, '--stream', stream, '--interval', '50', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout!.on('data', (d) => (out.stdout += d));
  child.stderr!.on('data', (d) => (out.stderr += d));
  const exited = new Promise<[number | null, string | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
  return { child, out, exited };
}

/** The retry line `walnut replicate` prints for the same server. */
const retryLine = (url: string) => new RegExp(`^walnut replica: WALNUT_IO: no NATS server answers at ${url.replace(/[.]/g, '\\.')} \\([^\\n]*\\); retrying\\n`);

/** The replica's last reported appliedSeq (-1 before any). */
function appliedSeq(stdout: string): number {
  const lines = stdout.split('\n').filter((l) => l.startsWith('{'));
  return lines.length === 0 ? -1 : (JSON.parse(lines[lines.length - 1]!) as { appliedSeq: number }).appliedSeq;
}

describe('walnut replica with no NATS server answering', () => {
  it('says so at once, naming the URL and that it retries; SIGINT ends it leaving nothing', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'none-'));
    const url = NOBODY_ANSWERS; // nothing listens there
    const { child, out, exited } = spawnReplica(url, 's', path.join(sub, 'replica.db'));
    try {
      // well within openReplica's 30 s: before, this waited in silence until it gave up
      await until(() => out.stderr !== '' || child.exitCode !== null, 10_000, () => out);
    } finally {
      child.kill('SIGINT');
    }
    expect(out.stderr).toMatch(retryLine(url));
    expect(await exited, out.stderr).toEqual([null, 'SIGINT']);
    expect(out.stdout).toBe('');
    expect(fs.readdirSync(sub)).toEqual([]);
  }, 60_000);

  it.skipIf(NATS_SKIP !== null)('a server started 2 s later is reached, and the replica catches up: nothing lost', async () => {
    const primaryPath = path.join(dir, 'primary.db');
    const setup = new Database(primaryPath);
    setup.pragma('journal_mode = WAL');
    setup.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
    setup.close();
    const port = await freePort();
    const server = new NatsNode(port, [], tmpDir('walnut-nats-'));
    servers.push(server);
    const url = server.url;

    // the primary commits and replicates before any server is there (its publisher retries too)
    const sql: WalnutDatabase = await openDatabase(primaryPath);
    const r: ReplicationHandle = sql.store.replicateTo({ servers: url, stream: 'late', stopTimeoutMs: 30_000 });
    r.on('error', () => undefined); // (its own "no NATS server answers"; the replica's is the point here)
    for (let i = 0; i < 20; i++) await sql.run('INSERT INTO t(v) VALUES (?)', [`before ${i}`]);

    const replicaPath = path.join(dir, 'replica.db');
    const { child, out, exited } = spawnReplica(url, 'late', replicaPath);
    try {
      const startedAt = Date.now();
      await until(() => out.stderr !== '' || child.exitCode !== null, 10_000, () => out);
      expect(out.stderr).toMatch(retryLine(url)); // told before the server came up
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 2000 - (Date.now() - startedAt))));
      await server.start();
      await r.ready;
      for (let i = 0; i < 20; i++) await sql.run('INSERT INTO t(v) VALUES (?)', [`after ${i}`]);
      await r.stop(); // publishes every commit made before it
      const last = r.metrics().publishedSeq;
      expect(last).toBeGreaterThan(0);
      await until(() => appliedSeq(out.stdout) >= last || child.exitCode !== null, 30_000, () => out);
      expect(appliedSeq(out.stdout), out.stderr).toBe(last);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited, out.stderr).toEqual([0, null]);
    await sql.close();

    const rows = (file: string) => {
      const db = new Database(file, { readonly: true, fileMustExist: true });
      try {
        return { rows: db.prepare('SELECT id, v FROM t ORDER BY id').all(), integrity: db.pragma('integrity_check', { simple: true }) };
      } finally {
        db.close();
      }
    };
    const [primary, replica] = [rows(primaryPath), rows(replicaPath)];
    expect(replica.integrity).toBe('ok');
    expect(replica.rows).toHaveLength(40);
    expect(replica.rows).toEqual(primary.rows);
  }, 90_000);
});

describe("openReplica's onRetry", () => {
  it('is told WALNUT_IO reason Unreachable naming the servers at the first failed attempt; openReplica still gives up after connectTimeoutMs', async () => {
    const url = NOBODY_ANSWERS;
    const told: WalnutError[] = [];
    const file = path.join(dir, 'lib-replica.db');
    await expectRejectsWalnut(openReplica(file, { servers: url, stream: 's', connectTimeoutMs: 1000, onRetry: (e) => told.push(e) }), 'WALNUT_IO', { reason: 'nats' });
    expect(told.length).toBeGreaterThanOrEqual(1);
    expect(told[0]).toMatchObject({ code: 'WALNUT_IO', reason: 'Unreachable' });
    expect(told[0]!.message).toContain(url);
    expect(fs.existsSync(`${file}-replica`)).toBe(false);
  }, 30_000);

  // the servers answer but the stream is not there (no primary replicating yet): that wait
  // (connectTimeoutMs) was silent too; onRetry is told StreamUnavailable naming the stream
  it.skipIf(NATS_SKIP !== null)('onRetry is told a stream that is not there (reason StreamUnavailable), then the give-up is reason stream', async () => {
    const port = await freePort();
    const server = new NatsNode(port, [], tmpDir('walnut-nats-'));
    servers.push(server);
    await server.start();
    const file = path.join(dir, 'no-stream.db');
    const told: WalnutError[] = [];
    await expectRejectsWalnut(openReplica(file, { servers: server.url, stream: 'nothing_here', connectTimeoutMs: 1500, onRetry: (e) => told.push(e) }), 'WALNUT_IO', { reason: 'stream' });
    expect(told.length).toBeGreaterThanOrEqual(1);
    expect(told[0]).toMatchObject({ code: 'WALNUT_IO', reason: 'StreamUnavailable' });
    expect(told[0]!.message).toContain('nothing_here');
    expect(fs.existsSync(`${file}-replica`)).toBe(false);
  }, 30_000);

  it('refuses what is not a function before anything connects (reason onRetry)', async () => {
    for (const onRetry of [42, 'log', null]) {
      await expectRejectsWalnut(openReplica(path.join(dir, 'never.db'), { servers: 'nats://127.0.0.1:1', stream: 's', onRetry } as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'onRetry' });
    }
    expect(fs.existsSync(path.join(dir, 'never.db-replica'))).toBe(false);
  });
});
