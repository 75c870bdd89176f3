// verify()'s busyTimeout option was not checked with the others: it was read again where the
// locks are taken, outside the options check, so a getter that throws there reached the caller
// as that raw Error (no WalnutError, no code), and a bad value (-5, 'x', NaN) was refused by the
// lock as reason 'timeout' ("lock timeout must be ...") where README says bad verify options are
// reason 'options'. It is now checked with maxFindings and pageChecksums (a whole number of
// milliseconds >= 0), read once, and used as read.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { verify } from '../../lib/index';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('verify option busyTimeout', () => {
  it('a bad value or a throwing getter is WALNUT_INVALID_ARGUMENT reason options; a good one works', async () => {
    const file = path.join(dir, 'app.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t(v); INSERT INTO t VALUES (1)');
    db.close();
    const thrown = new TypeError('the caller\'s getter');
    let reads = 0;
    const onceOnly = { get busyTimeout() { if (reads++ > 0) throw thrown; return 100; } };
    for (const bad of [-5, 'x', NaN, 1.5, Infinity, null]) {
      await expectRejectsWalnut(verify(file, 1, { busyTimeout: bad as unknown as number }), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    }
    const err = await expectRejectsWalnut(verify(file, 1, Object.defineProperty({}, 'busyTimeout', { enumerable: true, get: () => { throw thrown; } })), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    expect(err.cause).toBe(thrown);
    expect((await verify(file, 5, onceOnly)).ok).toBe(true); // read once
    expect((await verify(file, 5, { busyTimeout: 0 })).ok).toBe(true);
    expect((await verify(file, 5, { busyTimeout: undefined })).ok).toBe(true);
  });
});
