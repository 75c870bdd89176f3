// Hostile: the primary's process SIGKILLed while it publishes a later base image (its parts 4+
// stored, never its final one) and not started again. restoreFromNats takes the newest whole
// base image and the log; a new replica waited for ever, silently (openReplica never resolved:
// the stream's newest base message was a part short of its final one, taken for a base still
// being published), until the primary came back and finished a base image. Now a new replica
// that finds the same unfinished part at two looks takes the newest whole base image before it,
// as restoreFromNats does: it opens, and applies the log up to the restore's state.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { connectNats, HEADER, lastMessageOn, subjectsOf } from '../../lib/replicate/nats';
import { openReplica } from '../../lib/replicate/replica';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { blobPrimary } from '../helpers/replicating';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir('walnut-hostile-primary-killed-in-later-base-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

/** A hang guard for openReplica (it resolves in ~1 s). */
const OPEN_WAIT_MS = WAIT_MS;

/** A primary process: later bases back to back (baseEveryMs 1), commits every 5 ms. */
const PRIMARY = `
const { open } = require(process.argv[3]);
(async () => {
  const store = await open(process.argv[1]);
  const r = store.replicateTo({ servers: process.argv[2], stream: 'pk', baseEveryMs: 1 });
  await r.ready;
  const snap = await store.snapshot();
  const page = Buffer.from(snap.readSync(2));
  snap.release();
  for (;;) {
    await store.commit([{ pgno: 2, data: page }]);
    await new Promise((res) => setTimeout(res, 5));
  }
})();
`;

describe.skipIf(NATS_SKIP !== null)('the primary killed in a later base', () => {
  it('a new replica opens from the newest whole base image, equal to the restore', async (ctx) => {
    const server = await startNatsServer();
    started.push(server);
    const file = path.join(dir, 'p.db');
    blobPrimary(file, 8000); // ~32 MiB: a later base of ~128 parts
    const child = spawn(process.execPath, ['-e', PRIMARY, file, server.url, path.resolve(__dirname, '../../dist/index.js')], { stdio: 'inherit' });
    const exited = new Promise((res) => child.once('exit', res));
    const link = await connectNats([server.url], () => false, 'test');
    let killedAt = '';
    try {
      // killed once a later base (after two whole ones) has stored its part 4
      let finals = 0;
      const deadline = Date.now() + 60_000;
      while (killedAt === '') {
        // the scene not reached (a loaded CI run saw no third base's part 4 in 120 s): reported
        // as skipped, not passed
        if (Date.now() > deadline) {
          child.kill('SIGKILL');
          await exited;
          await link.nc.close();
          ctx.skip();
        }
        // a look that times out (the primary's bases back to back keep the server busy: 3 of 4
        // runs had one request time out) is only a look: the next one follows
        const m = await lastMessageOn(link, 'pk', subjectsOf('pk').base).catch((e: Error) => {
          if (e.name === 'TimeoutError' || /timeout/i.test(e.message)) return undefined;
          throw e;
        });
        if (m === undefined) continue;
        if (m !== null && m.header.get(HEADER.BASE_FINAL) === '1') finals++;
        else if (m !== null && finals >= 2 && Number(m.header.get(HEADER.BASE_PART)) >= 4) {
          child.kill('SIGKILL');
          killedAt = `part ${m.header.get(HEADER.BASE_PART)} of the base of commit ${m.header.get(HEADER.BASE_SEQ)}`;
        }
        await new Promise((res) => setTimeout(res, 2));
      }
      await exited;
      const last = await lastMessageOn(link, 'pk', subjectsOf('pk').base);
      expect(last?.header.get(HEADER.BASE_FINAL), killedAt).not.toBe('1'); // (the case: the newest base unfinished)
    } finally {
      await link.nc.close();
    }
    const out = path.join(dir, 'restored.db');
    const res = await restoreFromNats(out, { servers: server.url, stream: 'pk' });
    const restored = await open(out, { readOnly: true });
    const want = await pageHashes(restored);
    await restored.close();
    const opening = openReplica(path.join(dir, 'r.db'), { servers: server.url, stream: 'pk' });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const replica = await Promise.race([opening, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`openReplica did not resolve in ${OPEN_WAIT_MS} ms (killed at ${killedAt})`)), OPEN_WAIT_MS)))]).finally(() => clearTimeout(timer));
    try {
      await until(() => replica.lag().appliedSeq === res.lastCommitSeq, WAIT_MS, () => ({ lag: replica.lag(), res, killedAt }));
      expect(await pageHashes(replica.store)).toEqual(want);
    } finally {
      await replica.close();
    }
  });
});
