// null as an options argument or an option's value was "not given" for some verbs and options
// and refused by others: open(path, { synchronous: null }) (and lockingMode, groupCommit,
// keepWal, zeroAhead, convert, shareLane, fec.codec) opened with the default where
// { busyTimeout: null } was refused; snapshot(null), snapshotSync(null), trySnapshotSync(null),
// metrics(null), metrics({ format: null }), open(path, null), openDatabase(path, null),
// createExportStream(db, null) were no options where restore(), verify() and replicateTo()
// refused null; WalnutFile.open({ create: null }) (or 'no') was read as truthy or not. Now
// the one rule (lib/option-names.ts): only undefined is "not given"; null is refused with
// WALNUT_INVALID_ARGUMENT naming it, before anything is opened or created.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { createExportStream, open, WalnutFile } from '../../lib/index';
import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('null options and option values', () => {
  it('open() and openDatabase() refuse them, naming the option, and create nothing', async () => {
    const file = path.join(dir, 'never.db');
    for (const name of ['synchronous', 'lockingMode', 'groupCommit', 'keepWal', 'zeroAhead', 'convert', 'shareLane', 'busyTimeout']) {
      await expectRejectsWalnut(open(file, { [name]: null } as never), 'WALNUT_INVALID_ARGUMENT', { reason: name });
    }
    await expectRejectsWalnut(open(file, { fec: { codec: null } } as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'fec.codec' });
    await expectRejectsWalnut(open(file, null as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    await expectRejectsWalnut(openDatabase(file, null as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    await expectRejectsWalnut(openDatabase(file, { synchronous: null } as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'synchronous' });
    await expectRejectsWalnut(openDatabase(file, { shareLane: null } as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'shareLane' });
    await expectRejectsWalnut(WalnutFile.open(file, { create: null } as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'create' });
    await expectRejectsWalnut(WalnutFile.open(file, { create: 'yes' } as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'create' });
    expect(fs.existsSync(file)).toBe(false);
  });

  it("a store's snapshot verbs, metrics and createExportStream refuse null options; undefined is none", async () => {
    const file = path.join(dir, 'a.db');
    const store = await open(file);
    try {
      await store.commit([{ pgno: 2, data: Buffer.alloc(store.pageSize, 1) }]);
      const s = store as unknown as Record<string, (o: unknown) => unknown>;
      await expectRejectsWalnut(Promise.resolve().then(() => s['snapshot']!.call(store, null)), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      for (const verb of ['snapshotSync', 'trySnapshotSync', 'metrics']) expectWalnutError(() => s[verb]!.call(store, null), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expectWalnutError(() => store.metrics({ format: null } as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expectWalnutError(() => store.snapshotSync({ sequenced: null } as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expectWalnutError(() => createExportStream(file, null as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      // nothing was taken: undefined still means none
      const snap = await store.snapshot(undefined);
      expect(snap.dbSize).toBe(2);
      snap.release();
      store.snapshotSync(undefined).release();
      store.trySnapshotSync(undefined)?.release();
      expect(typeof s['metrics']!.call(store, undefined)).toBe('object');
    } finally {
      await store.close();
    }
  });
});
