// rebuildWalIndex() and recoverWithRepair() (public: `walnut recover`'s verbs) took any value
// as the database path: undefined, null, a number, an object or a Buffer reached node:path and
// came back as its raw TypeError ('The "paths[0]" argument must be of type string'), no
// WalnutError and no code to branch on. Now, as open(), inspect() and verify() do, a path that
// is not a non-empty string without NUL bytes is WALNUT_INVALID_ARGUMENT, reason 'dbPath', and
// nothing is created; a real database is still recovered.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, rebuildWalIndex, recoverWithRepair } from '../../lib/index';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('rebuildWalIndex / recoverWithRepair with a path that is not one', () => {
  it('WALNUT_INVALID_ARGUMENT (dbPath) for every non-path; a real database still recovers', async () => {
    const before = fs.readdirSync(process.cwd());
    for (const bad of [undefined, null, 5, {}, [], Buffer.from('x.db'), '', 'a\0b']) {
      await expectRejectsWalnut(rebuildWalIndex(bad as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'dbPath' });
      await expectRejectsWalnut(recoverWithRepair(bad as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'dbPath' });
    }
    expect(fs.readdirSync(process.cwd())).toEqual(before);
    const db = path.join(dir, 'a.db');
    const store = await open(db, { pageSize: 1024, keepWal: true, autoCheckpoint: false });
    await store.commit([{ pgno: 2, data: Buffer.alloc(1024, 2) }]);
    await store.close();
    expect(await rebuildWalIndex(db)).toEqual({ walFrames: 1, pageSize: 1024 });
    expect(await recoverWithRepair(db)).toMatchObject({ walFrames: 1 });
  });
});
