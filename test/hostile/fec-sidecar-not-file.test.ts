// A -wal-fec that is not a regular file (a directory, a FIFO): verify refused it with
// WALNUT_CANTOPEN NotRegularFile, while open({ fec }) and recoverWithRepair failed with a bare
// WALNUT_IO "open failed: Is a directory" (a FIFO would block the open). Now all three agree.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'vitest';

import { open } from '../../lib/open';
import { recoverWithRepair } from '../../lib/fec/recover';
import { verify } from '../../lib/integrity/verify';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('a -wal-fec that is not a regular file', () => {
  it('open({ fec }), recoverWithRepair and verify: WALNUT_CANTOPEN, reason NotRegularFile', async () => {
    for (const kind of ['directory', 'fifo'] as const) {
      const db = path.join(dir, `${kind}.db`);
      const store = await open(db, { fec: { repairSymbols: 2 }, keepWal: true, autoCheckpoint: false });
      await store.commit([{ pgno: 2, data: Buffer.alloc(4096, 1) }]);
      await store.close();
      const sidecar = `${db}-wal-fec`;
      fs.rmSync(sidecar);
      if (kind === 'directory') fs.mkdirSync(sidecar);
      else execFileSync('mkfifo', [sidecar]);
      await expectRejectsWalnut(open(db, { fec: { repairSymbols: 2 } }), 'WALNUT_CANTOPEN', { reason: 'NotRegularFile', path: sidecar });
      await expectRejectsWalnut(recoverWithRepair(db), 'WALNUT_CANTOPEN', { reason: 'NotRegularFile', path: sidecar });
      await expectRejectsWalnut(verify(db, 1), 'WALNUT_CANTOPEN', { reason: 'NotRegularFile', path: sidecar });
    }
  });
});
