// A follow export reads the WAL through a read-only descriptor of its own on the read lane
// (walnut-rd; WalIndex.followerWalFile, one per connection), which close() must close whatever
// stage the exports are at: before the base image, while the follower starts, mid-pass, several
// followers at once, with commits in flight. Every export and commit settles (with its stats or
// a WalnutError), nothing is left unhandled, and after each close no descriptor of the database,
// its -wal or -shm is left open in this process.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/index';
import { WalnutError } from '../../lib/errors';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const page = (v: number) => Buffer.alloc(4096, v);

/** Descriptors of this process open on `db` or its companions (-wal, -shm). */
function openFds(db: string): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(db)) out.push(target);
    } catch {
      // the directory's own descriptor, gone by now
    }
  }
  return out;
}

describe('follow exports racing store.close()', () => {
  it('at every stage, with 1-6 followers and commits in flight: every export and commit settles, no descriptor of the files is left', async () => {
    const db = path.join(dir, 'race.db');
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      let followed = 0;
      for (let round = 0; round < 24; round++) {
        const store = await open(db, { autoCheckpoint: 40 });
        await store.commit([{ pgno: 2, data: page(round) }]);
        const records: number[] = [];
        const followers = 1 + (round % 6);
        const exports = Array.from({ length: followers }, (_, f) => {
          records[f] = 0;
          return store.exportTo({ appendRecord: async () => void records[f]!++, flush: async () => undefined }, { follow: true, pollMs: 1 });
        });
        const settled = exports.map((h) => h.done.then(() => 'ok', (e: unknown) => (e instanceof WalnutError ? e.code : `not a WalnutError: ${String(e)}`)));
        const commits: Promise<unknown>[] = [];
        for (let i = 0; i < 60; i++) commits.push(store.commit([{ pgno: 3 + (i % 9), data: page(i) }]).catch((e: unknown) => (e instanceof WalnutError ? e.code : e)));
        // the stage close() comes at: before anything ran, after a few turns, after some passes
        const stage = round % 4;
        if (stage === 1) for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
        if (stage >= 2) await new Promise((r) => setTimeout(r, stage === 2 ? 5 : 40));
        if (stage === 3) {
          // close() once the followers' WAL descriptor is open (beside the store's own)
          await Promise.all(commits);
          await until(() => openFds(db).filter((f) => f === `${db}-wal`).length >= 2, WAIT_MS);
          followed++;
        }
        await store.close();
        const outcomes = await Promise.all(settled);
        for (const o of outcomes) expect(['ok', 'WALNUT_CLOSED']).toContain(o);
        for (const c of await Promise.all(commits)) if (typeof c !== 'object') expect(c).toBe('WALNUT_CLOSED');
        expect(openFds(db), `round ${round}`).toEqual([]);
      }
      expect(followed).toBe(6);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  }, 180_000);
});
