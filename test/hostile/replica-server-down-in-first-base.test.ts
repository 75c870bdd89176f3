// Hostile (break50): the NATS server SIGKILLed and started again, or SIGSTOPped 3 s and resumed,
// while a new replica writes the first base image's pages into restore()'s temporary file (grown
// past 4 MiB of a 32 MiB base): openReplica resolves, the replica equals the primary page for
// page, and no temporary file is left beside it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { openReplica } from '../../lib/replicate/replica';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { blobPrimary } from '../helpers/replicating';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

/** Held by break50's tries (no bug of its own): tens of seconds of outages, run by `npm run test:scale`, not npm test. */
const SCALE = process.env.WALNUT_SCALE === '1';


const dir = tmpDir('walnut-hostile-replica-server-down-in-base-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const restoreTemps = (d: string): string[] => fs.readdirSync(d).filter((n) => /\.restore-[0-9a-f]+$/.test(n));

describe.skipIf(NATS_SKIP !== null || !SCALE)(`the server down while a new replica reads its first base${SCALE ? '' : ' (skipped: WALNUT_SCALE=1, npm run test:scale)'}`, () => {
  for (const how of ['kill', 'pause'] as const) {
    it(`${how}: openReplica resolves, equal to the primary, no temporary file left`, async () => {
      const server = await startNatsServer();
      started.push(server);
      const file = path.join(dir, `p-${how}.db`);
      blobPrimary(file, 8000);
      const store = await open(file);
      const stream = `down${how}`;
      const r = store.replicateTo({ servers: server.url, stream });
      await r.ready;
      await until(() => r.metrics().bases >= 1, 60_000, () => r.metrics());
      await r.stop();
      const want = await pageHashes(store);
      await store.close();
      const rdir = path.join(dir, `r-${how}`);
      fs.mkdirSync(rdir);
      const rfile = path.join(rdir, 'r.db');
      const retries: string[] = [];
      const opening = openReplica(rfile, { servers: server.url, stream, onRetry: (e: Error) => retries.push(e.message) });
      opening.catch(() => undefined);
      await until(() => restoreTemps(rdir).some((n) => (fs.statSync(path.join(rdir, n), { throwIfNoEntry: false })?.size ?? 0) > 4 << 20), 60_000, () => fs.readdirSync(rdir));
      if (how === 'kill') {
        await server.stop();
        await new Promise((res) => setTimeout(res, 300));
        await server.start();
      } else {
        server.pause();
        await new Promise((res) => setTimeout(res, 3000));
        server.resume();
      }
      const replica = await opening;
      try {
        const rstore = await open(rfile, { readOnly: true });
        try {
          expect(await pageHashes(rstore)).toEqual(want);
        } finally {
          await rstore.close();
        }
      } finally {
        await replica.close();
      }
      expect(restoreTemps(rdir)).toEqual([]);
    });
  }
});
