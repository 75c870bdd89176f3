// Hostile (break50): a `walnut replica` process SIGKILLed while the first base image's pages go
// into restore()'s temporary file (`.<name>.restore-<hex>`, grown past a few MiB of a 32 MiB
// base), then started again: it builds the replica from the newest base image, equal to the
// primary page for page, and the killed restore's temporary file is gone.
// Then SIGKILLed in five re-bases, 50-1200 ms after the primary's next session's base (each after
// commits the stream never saw: a VACUUM shrinking the file, or half its rows rewritten), started
// again each time: equal to the primary at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { blobPrimary } from '../helpers/replicating';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

/** Held by break50's tries (no bug of its own): tens of seconds of outages, run by `npm run test:scale`, not npm test. */
const SCALE = process.env.WALNUT_SCALE === '1';


const dir = tmpDir('walnut-hostile-replica-killed-in-base-');
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

interface Lag {
  session: string;
  appliedSeq: number;
  rebases: number;
}

function replicaProcess(url: string, stream: string, db: string): { child: ChildProcess; lags: Lag[]; exited: Promise<[number | null, string | null]> } {
  const child = spawn(process.execPath, [bin, 'replica', db, '--nats', url, '--stream', stream, '--interval', '20', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lags: Lag[] = [];
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const l of lines) if (l.startsWith('{')) lags.push(JSON.parse(l) as Lag);
  });
  child.stderr!.on('data', () => undefined);
  const exited = new Promise<[number | null, string | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
  return { child, lags, exited };
}

const restoreTemps = (d: string): string[] => fs.readdirSync(d).filter((n) => /\.restore-[0-9a-f]+$/.test(n));

describe.skipIf(NATS_SKIP !== null || !SCALE)(`a replica process killed in a base image${SCALE ? '' : ' (skipped: WALNUT_SCALE=1, npm run test:scale)'}`, () => {
  it('killed while its first base is written, and during a re-base: started again, equal to the primary, no temporary file left', async () => {
    const server = await startNatsServer();
    started.push(server);
    const file = path.join(dir, 'p.db');
    blobPrimary(file, 8000);
    const stream = 'killedbase';
    let store = await open(file);
    let r = store.replicateTo({ servers: server.url, stream });
    await r.ready;
    await until(() => r.metrics().bases >= 1, 60_000, () => r.metrics());
    await r.stop();
    const rdir = path.join(dir, 'replica');
    fs.mkdirSync(rdir);
    const rfile = path.join(rdir, 'r.db');
    // killed once its temporary file holds a few MiB of the base
    const first = replicaProcess(server.url, stream, rfile);
    await until(() => restoreTemps(rdir).some((n) => (fs.statSync(path.join(rdir, n), { throwIfNoEntry: false })?.size ?? 0) > 4 << 20), 60_000, () => fs.readdirSync(rdir));
    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual([null, 'SIGKILL']);
    expect(restoreTemps(rdir).length).toBe(1); // (left by the kill)
    expect(fs.existsSync(rfile)).toBe(false);
    const second = replicaProcess(server.url, stream, rfile);
    await until(() => second.lags.some((l) => l.appliedSeq === r.metrics().publishedSeq && l.session === r.metrics().session), 60_000, () => second.lags.at(-1));
    expect(restoreTemps(rdir)).toEqual([]);
    // the primary goes on without the stream (commits it never sees: a VACUUM, or half its rows
    // rewritten) and starts a new session: a re-base, and the replica SIGKILLed at a different
    // moment of it each round (its watchdog finds the new session within ~100 ms, the base's
    // ~128 parts of 256 KiB take longer to fetch, compare and apply); started again each time
    let live = second;
    const kills: string[] = [];
    for (const [round, delay] of [50, 150, 400, 800, 1200].entries()) {
      await r.stop();
      await store.close();
      const w = new Database(file);
      if (round % 2 === 0) {
        w.exec(`DELETE FROM t WHERE id % ${3 + round} = 0`);
        w.exec('VACUUM');
      } else w.exec('UPDATE t SET v = randomblob(3500) WHERE id % 2 = 0');
      w.close();
      store = await open(file);
      r = store.replicateTo({ servers: server.url, stream });
      await r.ready;
      await until(() => r.metrics().bases >= 1, 60_000, () => r.metrics());
      await new Promise((res) => setTimeout(res, delay));
      const at = live.lags.at(-1)!;
      live.child.kill('SIGKILL');
      await live.exited;
      kills.push(`${delay} ms: ${at.session === r.metrics().session ? 'applied' : 'before'}`);
      live = replicaProcess(server.url, stream, rfile);
    }
    const third = live;
    await until(() => third.lags.some((l) => l.appliedSeq === r.metrics().publishedSeq && l.session === r.metrics().session), 60_000, () => ({ last: third.lags.at(-1), kills }));
    third.child.kill('SIGTERM');
    await third.exited;
    await r.stop();
    const want = await pageHashes(store);
    await store.close();
    const replica = await open(rfile, { readOnly: true });
    try {
      expect(await pageHashes(replica)).toEqual(want);
    } finally {
      await replica.close();
    }
    expect(restoreTemps(rdir)).toEqual([]);
  });
});
