// A snapshot of a store with sequenced commits in flight sees them before they are durable. A
// conditional one (sequence(pages, { base })) that another connection overtook (a sqlite3
// process committed after its base) can only fail (WALNUT_CONFLICT, OtherWriter), and every
// ticket after it with it (ChainBroken); yet a snapshot taken once the other commit was visible
// laid its pages over that commit: a database state that never existed and never would.
// verifySnapshot() of such snapshots, beside a python3 writer and walnut/sql callers, reported
// b-tree damage (key-order, page-range) on a healthy database (integrity_check ok).
// Now a new snapshot's view of the tickets stops before the first one whose base it knows
// was overtaken: it sees the other connection's commit, as it is.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { verifySnapshot } from '../../lib/integrity/verify';
import { runPython } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const FILL = path.join(__dirname, '..', 'helpers', 'sqlite-fill.py');

describe('sequenced commits overtaken by another connection', () => {
  it('a snapshot taken after the other commit does not lay the doomed ticket over it', async () => {
    const file = path.join(dir, 'overtaken.db');
    execFileSync('sqlite3', [file, "PRAGMA journal_mode=WAL; CREATE TABLE t(w, v); INSERT INTO t VALUES (0, 'a');"]);
    const store = await open(file, { shareLane: false });
    try {
      const base = await store.snapshot();
      expect(base.dbSize).toBe(2);
      const page1 = await base.read(1); // the header as of base: 2 pages
      // a sqlite3 process grows table t past its root page (pages 3.. and a new root layout)
      await runPython(FILL, [file, '100', '200']);
      const grown = store.trySnapshotSync({ sequenced: false })!;
      const size = grown.dbSize;
      grown.release();
      expect(size).toBeGreaterThan(3);

      // built on base: page 1 as it was, the database 2 pages long; it can only conflict
      const { ticket, durable } = store.sequence([{ pgno: 1, data: page1 }], { base, dbSize: 2 });
      expect(ticket).toBe(1);
      const view = store.trySnapshotSync()!;
      try {
        expect(verifySnapshot(view, 5).issues).toEqual([]);
        expect(view.pendingTicket).toBe(0);
        expect(view.dbSize).toBe(size);
        await view.whenDurable();
      } finally {
        view.release();
      }
      await expectRejectsWalnut(durable, 'WALNUT_CONFLICT', { reason: 'OtherWriter' });
      base.release();
      expect(store.resumeCommits(store.chainBrokenBy!)).toBe(true);

      // a ticket on a base that saw the other commit is seen by snapshots as before
      const now = await store.snapshot();
      const again = store.sequence([{ pgno: 1, data: await now.read(1) }], { base: now });
      const after = store.trySnapshotSync()!;
      expect(after.pendingTicket).toBe(again.ticket);
      expect(verifySnapshot(after, 5).issues).toEqual([]);
      after.release();
      now.release();
      await again.durable;
    } finally {
      await store.close();
    }
    expect(execFileSync('sqlite3', [file, 'PRAGMA integrity_check; SELECT count(*) FROM t;']).toString().trim()).toBe('ok\n101');
  });
});
