// Hostile: a batch of several commits (group commit, or a commit lane's batch of its workers'
// commits) whose frames begin the -shm's next 32 KiB segment, on a real full disk (a small ext4
// of 1 KiB blocks). A lone commit allocates the new segment before it writes (commitInline), so
// there a full disk is WALNUT_FULL with nothing written and the store commits again after
// resumeCommits (full-disk-shm-segment.test.ts). A batch of two or more commits went the other
// way (WalIndex.appendAndPublish): frames written and synced first, the segment grown only by
// the index append after them, so the full disk failed it after the write: the store stopped
// (WALNUT_FAILED 'the commit pipeline failed after writing to the WAL, before publishing') and
// had to be reopened; in a commit lane each leader that took the next batch stopped the same
// way, one after another (found with 4 workers: 3 of 4 stores stopped). Now every append grows
// the -shm to its last frame's segment before it writes: the batch fails WALNUT_FULL, nothing
// written, and the stores commit again once space is freed.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

import { ext4Skip, fillUp } from '../helpers/small-fs';
import { commitToSegmentEnd, SEGMENT_FRAMES, storeOnExt4 } from '../helpers/shm-segment-fill';

const EXT4_SKIP = ext4Skip();

const integrity = (file: string) => execFileSync('sqlite3', [file, 'PRAGMA integrity_check'], { encoding: 'utf8' }).trim();

// A worker's store (a lane member: the test's store leads) committing page 2 on the test's
// signal, reporting each outcome's code; resumeCommits(e) on the signal to go on.
const MEMBER = `
const { parentPort, workerData } = require('node:worker_threads');
const { open } = require(workerData.dist);
(async () => {
  const store = await open(workerData.file, { autoCheckpoint: false, keepWal: true });
  const page2 = Buffer.from(workerData.page2);
  let failure = null;
  parentPort.on('message', async (m) => {
    if (m === 'close') { await store.close(); parentPort.postMessage(['closed']); return; }
    if (m === 'resume') { parentPort.postMessage(['resumed', store.resumeCommits(failure)]); return; }
    const codes = await Promise.all(Array.from({ length: m }, () => store.commit([{ pgno: 2, data: page2 }]).then((r) => 'ok ' + r.lastFrame, (e) => { failure = failure ?? e; return (e.code ?? 'raw ' + e.message) + ' ' + (e.reason ?? ''); })));
    parentPort.postMessage(['commits', codes]);
  });
  parentPort.postMessage(['open', store.metrics().lane.leader]);
})().catch((e) => parentPort.postMessage(['error', String(e.stack)]));
`;

describe.skipIf(EXT4_SKIP !== null)(`a batch beginning the -shm's second segment on a full ext4 of 1 KiB blocks${EXT4_SKIP === null ? '' : ` (${EXT4_SKIP})`}`, () => {
  it('two commits in one batch: WALNUT_FULL before anything is written (the store goes on), then they commit once space is freed', async () => {
    const { dir, file, store, page2 } = await storeOnExt4();
    try {
      await commitToSegmentEnd(store, page2, 1);
      const filler = fillUp(dir, 12 * 1024); // room for frames (the WAL is zeroed ahead), not for the segment
      // submitted in one turn: one batch, frames 4062 (the first segment's last) and 4063
      const two = await Promise.allSettled([0, 1].map(() => store.commit([{ pgno: 2, data: page2 }])));
      expect(two.map((r) => r.status === 'rejected' && (r.reason as { code?: string }).code)).toEqual(['WALNUT_FULL', 'WALNUT_FULL']);
      fs.rmSync(filler);
      expect(store.resumeCommits((two[0] as PromiseRejectedResult).reason)).toBe(true);
      const again = await Promise.all([0, 1].map(() => store.commit([{ pgno: 2, data: page2 }])));
      expect(again.map((r) => r.lastFrame)).toEqual([SEGMENT_FRAMES, SEGMENT_FRAMES + 1]);
    } finally {
      await store.close();
    }
    expect(integrity(file)).toBe('ok');
  });

  it('a commit lane (the test\'s store leads, 3 workers\' stores): batches past the segment fail WALNUT_FULL, no store stops, the leader keeps the lead; all commit again once space is freed', async () => {
    const { dir, file, store, page2 } = await storeOnExt4();
    expect(store.metrics().lane!.leader).toBe(true);
    const workers: Worker[] = [];
    const ask = (w: Worker, m: unknown): Promise<unknown[]> => new Promise((resolve, reject) => {
      const on = (msg: unknown[]) => {
        if (msg[0] === 'error') reject(new Error(String(msg[1])));
        else {
          w.off('message', on);
          resolve(msg);
        }
      };
      w.on('message', on);
      if (m !== undefined) w.postMessage(m);
    });
    try {
      for (let i = 0; i < 3; i++) {
        const w = new Worker(MEMBER, { eval: true, workerData: { file, page2, dist: path.resolve(__dirname, '../../dist/index.js') } });
        workers.push(w);
        expect(await ask(w, undefined)).toEqual(['open', false]);
      }
      await commitToSegmentEnd(store, page2, 1);
      const filler = fillUp(dir, 12 * 1024);
      // each member commits 2 at once, and the leader 2: frame 4062 may land alone, nothing past it
      const [own, ...theirs] = await Promise.all([
        Promise.all([0, 1].map(() => store.commit([{ pgno: 2, data: page2 }]).then((r) => `ok ${r.lastFrame}`, (e) => `${e.code} ${e.reason ?? ''}`))),
        ...workers.map((w) => ask(w, 2).then((m) => m[1] as string[])),
      ]);
      const outcomes = [...own!, ...theirs.flat()];
      expect(outcomes.filter((o) => !o.startsWith('WALNUT_FULL') && o !== `ok ${SEGMENT_FRAMES}`), outcomes.join(', ')).toEqual([]);
      expect(store.metrics().lane!.leader).toBe(true);
      fs.rmSync(filler);
      store.resumeCommits(store.chainBrokenBy ?? undefined);
      for (const w of workers) await ask(w, 'resume');
      const after = await Promise.all([
        Promise.all([0, 1].map(() => store.commit([{ pgno: 2, data: page2 }]).then(() => 'ok', (e) => `${e.code} ${e.reason ?? ''}`))),
        ...workers.map((w) => ask(w, 2).then((m) => (m[1] as string[]).map((o) => o.split(' ')[0]))),
      ]);
      expect(after.flat()).toEqual(Array(8).fill('ok'));
      expect(store.metrics().lane!.leaderChanges).toBe(0);
      for (const w of workers) expect(await ask(w, 'close')).toEqual(['closed']);
    } finally {
      for (const w of workers) await w.terminate();
      await store.close();
    }
    expect(integrity(file)).toBe('ok');
  }, 60_000);
});
