// Hostile: the OS refuses a commit's write outright — the -wal made immutable (chattr +i, a real
// ext4 flag: pwritev fails with EPERM before writing a byte, as EROFS on a file system remounted
// read-only does). The commit was rejected with reason OutcomeUnknown ("whether these commits
// appear after a reopen is unknown") though nothing of it had reached the WAL: walnut tried to
// invalidate its frames, that write was refused too, and the failure was reported as unknown.
// Now the addon reports the frames' write made no progress, nothing is invalidated (there is
// nothing), and the commits fail definitely: their own error without a reason, the chain broken
// as after any failed commit, the store committing again after resumeCommits once the file can
// be written, and the refused pages never in the database after a reopen.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, WalnutError } from '../../lib/index';
import { immutableSkip } from '../helpers/small-fs';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PS = 4096;

const SKIP = immutableSkip(dir);

describe.skipIf(SKIP !== null)(`a commit whose write the OS refuses before its first byte${SKIP === null ? '' : ` (${SKIP})`}`, () => {
  it('fails definitely (no OutcomeUnknown), the store commits again after resumeCommits, and a reopen has none of it', async () => {
    const db = path.join(dir, 'app.db');
    const store = await open(db, { pageSize: PS, autoCheckpoint: false });
    const page = (v: number) => Buffer.alloc(PS, v);
    for (let v = 1; v <= 3; v++) await store.commit([{ pgno: 2, data: page(v) }, { pgno: 3, data: page(v) }]);
    execFileSync('chattr', ['+i', `${db}-wal`]);
    let refused: unknown[];
    try {
      // one batch of several commits, then one more after the chain broke
      refused = await Promise.all([7, 8, 9].map((v) => store.commit([{ pgno: 2, data: page(v) }]).then(() => null, (e: unknown) => e)));
      refused.push(await store.commit([{ pgno: 3, data: page(10) }]).then(() => null, (e: unknown) => e));
    } finally {
      execFileSync('chattr', ['-i', `${db}-wal`]);
    }
    const first = refused[0] as WalnutError;
    expect(first).toBeInstanceOf(WalnutError);
    expect(first.code).toBe('WALNUT_IO');
    expect(first.errno).toBe(1); // EPERM
    for (const e of refused) {
      expect(e).toBeInstanceOf(WalnutError);
      expect((e as WalnutError).reason).not.toBe('OutcomeUnknown'); // was OutcomeUnknown on every one
      expect((e as WalnutError).message).not.toMatch(/unknown/);
      expect('nothingWritten' in (e as object)).toBe(false);
    }
    expect((refused[3] as WalnutError).reason).toBe('ChainBroken');
    expect(store.resumeCommits(store.chainBrokenBy)).toBe(true);
    await store.commit([{ pgno: 3, data: page(4) }]);
    await store.close();

    const again = await open(db);
    const snap = await again.snapshot();
    expect((await snap.read(2))[0]).toBe(3); // none of 7, 8, 9
    expect((await snap.read(3))[0]).toBe(4);
    snap.release();
    await again.close();
  });
});
