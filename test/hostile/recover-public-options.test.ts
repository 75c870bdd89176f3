// The public recover verbs (`walnut recover`'s: rebuildWalIndex, recoverWithRepair) took the
// wal-index's internal options as they came: rebuildWalIndex(db, { convert: true }) converted a
// rollback-journal database to WAL mode (a "recovery" that rewrote its header), an unknown or
// misspelt option ({ busytimeout }) and a lockingMode of 'bogus' were dropped without a word, and
// an argument past the ones they take (recoverWithRepair(db, { force: true })) was ignored. And
// repairWal, exported beside them, took walnut's internal WalFile, which no caller outside can
// build: given a path it threw a raw TypeError ("wal.recoverSync is not a function"). Now
// rebuildWalIndex takes { busyTimeout } only and recoverWithRepair a path only, anything else
// WALNUT_INVALID_ARGUMENT (reason 'options', or 'busyTimeout' for a bad one) with nothing changed,
// and repairWal is no longer public (recoverWithRepair is its public form).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import * as walnut from '../../lib/index';
import { open, rebuildWalIndex, recoverWithRepair } from '../../lib/index';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('rebuildWalIndex / recoverWithRepair take only their own options', () => {
  it('refuse internal, unknown and extra options, changing nothing', async () => {
    const rollback = path.join(dir, 'rollback.db');
    const s = new Database(rollback);
    s.exec('CREATE TABLE t(a); INSERT INTO t VALUES (1)');
    s.close();
    const before = fs.readFileSync(rollback);
    for (const options of [{ convert: true }, { busytimeout: 10 }, { lockingMode: 'bogus' }, { lockingMode: 'exclusive' }, { repairWal: async () => true }, 5, null]) {
      await expectRejectsWalnut(rebuildWalIndex(rollback, options as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    }
    await expectRejectsWalnut(rebuildWalIndex(rollback, { busyTimeout: -1 }), 'WALNUT_INVALID_ARGUMENT', { reason: 'busyTimeout' });
    await expectRejectsWalnut((rebuildWalIndex as (...a: unknown[]) => Promise<unknown>)(rollback, {}, 1), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    await expectRejectsWalnut((recoverWithRepair as (...a: unknown[]) => Promise<unknown>)(rollback, { force: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    expect(fs.readFileSync(rollback).equals(before)).toBe(true); // still rollback-journal, untouched
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('rollback.db'))).toEqual(['rollback.db']);

    const db = path.join(dir, 'a.db');
    const store = await open(db, { pageSize: 1024, keepWal: true, autoCheckpoint: false });
    await store.commit([{ pgno: 2, data: Buffer.alloc(1024, 2) }]);
    await store.close();
    expect(await rebuildWalIndex(db, { busyTimeout: 100 })).toEqual({ walFrames: 1, pageSize: 1024 });
    expect(await rebuildWalIndex(db, undefined)).toEqual({ walFrames: 1, pageSize: 1024 });
    expect(await recoverWithRepair(db, ...([undefined] as unknown as []))).toMatchObject({ walFrames: 1 });
  });

  it('repairWal, which takes an internal WalFile, is not public', () => {
    expect('repairWal' in walnut).toBe(false);
  });
});
