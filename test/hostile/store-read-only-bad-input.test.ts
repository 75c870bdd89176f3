// A store opened read-only given bad input to a writing verb says what is wrong with the input,
// as a read-write store does and as open()'s readOnly refuses an option's bad value as bad
// before saying it writes: store.checkpoint('bogus') was WALNUT_READONLY (a program's bug
// reported as the database being read-only), as were commit() and sequence() of pages or
// options no store takes. Now those are WALNUT_INVALID_ARGUMENT with the reason a read-write
// store gives (mode, pages, options), and good input is still WALNUT_READONLY, reason
// ReadOnlyDatabase; nothing is written (sha256 of the file and -wal).
import * as fs from 'node:fs';
import * as path from 'node:path';

import { describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import type { Store } from '../../lib/commit/store';
import { openDatabase } from '../../lib/sql';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { fileAndWalSha256 } from '../helpers/read-only-files';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir('walnut-ro-bad-input-');


/** What each writing verb of `store` says to bad input, then to good input: [code, reason] pairs. */
async function answers(store: Store): Promise<[string, string | undefined][]> {
  const page = new Uint8Array(store.pageSize);
  const snap = await store.snapshot();
  page.set(snap.readSync(1));
  snap.release();
  const got: [string, string | undefined][] = [];
  const rejected = async (p: Promise<unknown>): Promise<void> => {
    const e = (await p.then(() => null, (err: unknown) => err)) as { code: string; reason?: string } | null;
    got.push(e === null ? ['resolved', undefined] : [e.code, e.reason]);
  };
  const thrown = (fn: () => unknown): void => {
    try {
      fn();
      got.push(['returned', undefined]);
    } catch (e) {
      got.push([(e as { code: string }).code, (e as { reason?: string }).reason]);
    }
  };
  await rejected(store.checkpoint('bogus' as never));
  await rejected(store.commit([{ pgno: 0, data: page }]));
  await rejected(store.commit([{ pgno: 1, data: new Uint8Array(100) }]));
  await rejected(store.commit([{ pgno: 1, data: page }], { dbSize: -1 } as never));
  thrown(() => store.sequence([{ pgno: 0, data: page }]));
  thrown(() => store.sequence([{ pgno: 1, data: page }], { release: 5 } as never));
  // good input: read-only
  await rejected(store.checkpoint('passive'));
  await rejected(store.commit([{ pgno: 1, data: page }]));
  thrown(() => store.sequence([{ pgno: 1, data: page }]));
  return got;
}

describe('bad input to a read-only store is WALNUT_INVALID_ARGUMENT, as on a read-write one', () => {
  it('checkpoint, commit and sequence: the input is refused as such; good input WALNUT_READONLY; nothing written', async () => {
    const file = path.join(dir, 'bad-input.db');
    const db = await openDatabase(file, { keepWal: true });
    await db.exec('CREATE TABLE t(v); INSERT INTO t VALUES (1)');
    await db.close();
    const rw = await open(file, { keepWal: true, autoCheckpoint: false, shareLane: false });
    let expected: [string, string | undefined][];
    try {
      expected = (await answers(rw)).slice(0, 6); // (its good input commits: only its refusals are compared)
    } finally {
      await rw.close();
    }
    for (const [code] of expected) expect(code).toBe('WALNUT_INVALID_ARGUMENT');
    const before2 = fileAndWalSha256(file); // (after the read-write store's good input was written)
    const ro = await open(file, { readOnly: true });
    try {
      const got = await answers(ro);
      expect(got.slice(0, 6)).toEqual(expected);
      expect(got.slice(6)).toEqual(Array(3).fill(['WALNUT_READONLY', 'ReadOnlyDatabase']));
    } finally {
      await ro.close();
    }
    expect(fileAndWalSha256(file)).toEqual(before2);
  });
});
