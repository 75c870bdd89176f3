// restoreFromNats and `walnut restore --nats --until` by time: a time between two base images
// restores exactly the last commit the primary's export had seen by then (from the older base,
// the log replayed), the same state as that commit's sequence; a time past the last commit gives
// the last (stoppedBy null); a time before the session's first base image is refused
// BeforeEarliest naming the earliest point in the error's earliestSeq and earliestTime, as
// restore() does (they were missing here: undefined); an ISO time with a zone offset is the
// same instant as its UTC form.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { runNode } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const bin = path.join(__dirname, '..', '..', 'bin', 'walnut.js');
const page = (i: number): Buffer => Buffer.alloc(4096, (i * 37 + 11) & 0xff);

describe.skipIf(NATS_SKIP !== null)('point-in-time restore from NATS by time', () => {
  it('a time between base images, past the last commit, before the first base, with a zone offset', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'));
    const r = store.replicateTo({ servers: server.url, stream: 'bytime', baseEveryCommits: 10, stopTimeoutMs: 30_000 });
    await r.ready;
    const COMMITS = 40;
    for (let i = 1; i <= COMMITS; i++) {
      await store.commit([{ pgno: 2 + (i % 6), data: page(i) }]);
      await new Promise((res) => setTimeout(res, 3)); // the export sees them at different times
    }
    await r.stop();
    expect(r.metrics().publishedSeq).toBe(COMMITS);
    expect(r.metrics().bases).toBeGreaterThanOrEqual(3);
    const servers = server.url;
    let n = 0;
    const restoreAt = async (until: number | Date | undefined): Promise<{ seq: number | null; time: string | null; pages: string[] }> => {
      const out = path.join(dir, `r${n++}.db`);
      const res = await restoreFromNats(out, { servers, stream: 'bytime', until });
      const copy = await open(out);
      try {
        return { seq: res.lastCommitSeq === null ? null : Number(res.lastCommitSeq), time: res.lastCommitTime, pages: await pageHashes(copy) };
      } finally {
        await copy.close();
      }
    };
    // each commit's time as the export saw it, from the restore at its sequence
    const bySeq = new Map<number, { time: string; pages: string[] }>();
    for (const k of [1, 9, 10, 11, 15, 20, 25, 33, COMMITS]) {
      const at = await restoreAt(k);
      expect(at.seq).toBe(k);
      bySeq.set(k, { time: at.time!, pages: at.pages });
    }
    for (const [k, { time, pages }] of bySeq) {
      const at = await restoreAt(new Date(time));
      // the last commit seen by that time: k, or a later one the export saw in the same ms
      expect(at.time, `commit ${k}`).toBe(time);
      expect(at.seq!).toBeGreaterThanOrEqual(k);
      if (at.seq === k) expect(at.pages).toEqual(pages);
    }
    const last = await restoreAt(new Date(Date.parse(bySeq.get(COMMITS)!.time) + 3_600_000));
    expect(last.seq).toBe(COMMITS);
    expect(last.pages).toEqual(await pageHashes(store));
    // before the first base image (the session's start, before commit 1)
    const first = Date.parse(bySeq.get(1)!.time);
    const early = await expectRejectsWalnut(restoreFromNats(path.join(dir, 'early.db'), { servers, stream: 'bytime', until: new Date(first - 3_600_000) }), 'WALNUT_INVALID_ARGUMENT', { reason: 'BeforeEarliest' });
    expect(early).toMatchObject({ earliestSeq: 0 });
    expect(Date.parse((early as unknown as { earliestTime: string }).earliestTime)).toBeLessThanOrEqual(first);
    expect(fs.existsSync(path.join(dir, 'early.db'))).toBe(false);
    // the CLI: commit 20's time written with a +01:00 offset is the same instant
    const t20 = new Date(Date.parse(bySeq.get(20)!.time) + 3_600_000).toISOString().replace('Z', '+01:00');
    const cli = await runNode(bin, ['restore', '--nats', servers, '--stream', 'bytime', path.join(dir, 'cli.db'), '--until', t20, '--json']);
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ lastCommitTime: bySeq.get(20)!.time });
    await store.close();
  });
});
