// Hostile: the file system refuses the -shm's pages under an open store — the -shm made
// immutable (chattr +i, a real ext4 flag: a store into its shared mapping raises SIGBUS). The
// commit's failure said "the -shm was truncated under this connection (below the 32 KiB it
// maps)", reason ShmTruncated, though the file was whole: an operator looked for a process
// that truncated it. Now, when the -shm still covers what is mapped, the error says the page
// could not be accessed though the file covers it (reason ShmFault); the store stops as before
// (WALNUT_FAILED, the batch's frames invalidated), and a reopen once the flag is gone has every
// acknowledged commit and none of the failed one. (A real truncation still says ShmTruncated:
// test/interop/break-shm-truncate.)
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, WalnutError } from '../../lib/index';
import { immutableSkip } from '../helpers/small-fs';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PS = 1024;

const SKIP = immutableSkip(dir);

describe.skipIf(SKIP !== null)(`a -shm whose pages the file system refuses${SKIP === null ? '' : ` (${SKIP})`}`, () => {
  it('is reported as such (ShmFault), not as a truncation; nothing acknowledged is lost', async () => {
    const db = path.join(dir, 'app.db');
    const store = await open(db, { pageSize: PS, autoCheckpoint: false });
    for (let v = 1; v <= 3; v++) await store.commit([{ pgno: 2, data: Buffer.alloc(PS, v) }]);
    execFileSync('chattr', ['+i', `${db}-shm`]);
    let err: unknown;
    try {
      err = await store.commit([{ pgno: 2, data: Buffer.alloc(PS, 9) }]).then(() => null, (e: unknown) => e);
    } finally {
      execFileSync('chattr', ['-i', `${db}-shm`]);
    }
    expect(err).toBeInstanceOf(WalnutError);
    const fault = ((err as WalnutError).reason === 'ShmFault' ? err : (err as { cause?: unknown }).cause) as WalnutError;
    expect(fault).toBeInstanceOf(WalnutError);
    expect(fault.code).toBe('WALNUT_CORRUPT');
    expect(fault.reason).toBe('ShmFault'); // was ShmTruncated
    expect(fault.message).not.toMatch(/truncated/);
    expect(fault.message).toMatch(/covers/);
    await store.close().catch(() => undefined);
    const again = await open(db);
    const snap = await again.snapshot();
    expect((await snap.read(2))[0]).toBe(3);
    snap.release();
    await again.close();
  });
});
