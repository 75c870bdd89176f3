// A read transaction of walnut/sql that saw a transaction sequenced before it (the writer's
// view: not durable yet) waits for that one's durability before it answers. When that write
// failed, the read was always told WALNUT_CONFLICT, reason ChainBroken ("retry it"), an I/O
// error or a full disk included (CommitPipeline.whenDurable wrapped every failure): a caller
// that retries conflicts retried into a failing disk, and the errno was gone. Now a failure
// that is no conflict (lost-commits.ts lostToConflict) reaches the read as itself (WALNUT_IO
// with errno EIO, WALNUT_FULL), as the write's own caller is told; a read after recovery
// answers from the durable rows. Real writes failed by the addon's fault hook in a child.
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
  for (const [errno, code] of [
    [5, 'WALNUT_IO'],
    [28, 'WALNUT_FULL'],
  ] as const) {
    it(`is told the write's own ${code}, not WALNUT_CONFLICT ChainBroken`, async () => {
      const file = path.join(tmpDir(), `read-fault-${errno}.db`);
      const out = await runJsonChild<{ write: Outcome; read: Outcome; after: { n: number } | Outcome; crashed?: string }>(path.join(HELPERS, 'sql-read-fault-child.js'), [file, String(errno)], { WALNUT_FAULT_INJECTION: '1' });
      expect(out.crashed).toBeUndefined();
      expect(out.write.code).toBe(code);
      expect(out.read).toEqual(out.write);
      expect(out.after).toEqual({ n: 1 });
    }, 20_000);
  }
});
