// A read transaction of walnut/sql that saw a transaction sequenced before it (the writer's
// view: not durable yet) waits for that one's durability before it answers. When that write
// failed, the read was always told WALNUT_CONFLICT, reason ChainBroken ("retry it"), an I/O
// error or a full disk included (CommitPipeline.whenDurable wrapped every failure): a caller
// that retries conflicts retried into a failing disk, and the errno was gone. Now a failure
// that is no conflict (lost-commits.ts lostToConflict) reaches the read as itself (WALNUT_IO
// with errno EIO, WALNUT_FULL; WALNUT_FAILED after a failed fsync, which stops the store), as
// the write's own caller is told; a read after a write's recovery answers from the durable rows. Real writes failed by the addon's fault hook in a child.
import * as path from 'node:path';

import { describe, expect, it } from 'vitest';

import { HELPERS, runJsonChild } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

interface Outcome {
  code: string;
  reason: string | null;
  errno: number | null;
}

describe('a read that saw a write which then failed (walnut/sql writer view)', () => {
  for (const [kind, errno, code] of [
    ['write', 5, 'WALNUT_IO'],
    ['write', 28, 'WALNUT_FULL'],
    ['sync', 5, 'WALNUT_FAILED'],
  ] as const) {
    it(`is told the ${kind}'s own ${code} (errno ${errno}), not WALNUT_CONFLICT ChainBroken`, async () => {
      const file = path.join(tmpDir(), `read-fault-${kind}-${errno}.db`);
      const out = await runJsonChild<{ write: Outcome; read: Outcome; after: { n: number } | Outcome; crashed?: string }>(path.join(HELPERS, 'sql-read-fault-child.js'), [file, String(errno), kind], { WALNUT_FAULT_INJECTION: '1' });
      expect(out.crashed).toBeUndefined();
      expect(out.write).toMatchObject({ code, errno });
      expect(out.read).toEqual(out.write);
      // a failed write is mended (the read after answers from the durable rows); a failed fsync stops the store
      expect(out.after).toEqual(kind === 'write' ? { n: 1 } : out.write);
    }, 20_000);
  }
});
