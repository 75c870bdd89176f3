// A WAL restart that meets a disk fault (issue #19: the restart batch is one I/O operation that
// writes the new header, syncs it, then writes and syncs the frames: WalFile.appendAfterHeader).
// Faults injected through the fault hook (native/faults.h) in a child process
// (test/helpers/restart-fault-child.js) at the header's write (EIO, ENOSPC, short) or sync, and at
// the frames' write (ENOSPC, short) or sync. Then a python3 sqlite3 process reads the database:
// exactly the acknowledged rows, integrity ok; the failing commit and the ones sequenced after it
// got stable WalnutError codes.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { HELPERS, runJsonChild } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

interface Out {
  acknowledged: number[];
  errors: string[];
  after: string | null;
  walHeaderChanged: boolean;
  frame1Pgno: number | null;
  frame1OfHeader: boolean;
  crashed?: string;
}

/** What a fresh python3 sqlite3 process reads: the rows, and integrity_check's answer. */
function sqliteReads(file: string): { rows: number[]; integrity: string } {
  const r = spawnSync('python3', ['-c', 'import sqlite3, sys, json\nc = sqlite3.connect(sys.argv[1])\nprint(json.dumps({"rows": sorted(v for (v,) in c.execute("SELECT v FROM t")), "integrity": c.execute("PRAGMA integrity_check").fetchone()[0]}))', file], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

const ARMED_INSERTS = 12;

describe('a WAL restart meeting a disk fault', () => {
  const cases: [scenario: string, code: string, where: 'header' | 'frames', stops: boolean][] = [
    ['headerWriteEIO', 'WALNUT_IO', 'header', false],
    ['headerWriteENOSPC', 'WALNUT_FULL', 'header', false],
    ['headerShortENOSPC', 'WALNUT_FULL', 'header', false],
    ['headerSyncEIO', 'WALNUT_FAILED', 'header', true],
    ['framesWriteENOSPC', 'WALNUT_FULL', 'frames', false],
    ['framesShortENOSPC', 'WALNUT_FULL', 'frames', false],
    ['framesSyncEIO', 'WALNUT_FAILED', 'frames', true],
  ];
  for (const [scenario, code, where, stops] of cases) {
    it(`${scenario}: the restart batch fails with ${code}, those sequenced after it are refused, nothing acknowledged is lost, sqlite3 reads exactly the acknowledged rows`, async () => {
      const file = path.join(dir, `${scenario}.db`);
      const out = await runJsonChild<Out>(path.join(HELPERS, 'restart-fault-child.js'), [file, scenario], { WALNUT_FAULT_INJECTION: '1' });
      expect(out.crashed).toBeUndefined();
      // the fault hit the restart batch: its commit failed first, and every INSERT sequenced after
      // it was refused; the ones the SQL pipeline sent only after it had recovered were committed
      // (how many depends on timing: all 12 fail on an idle machine, 4 did under ASan)
      const armedAcknowledged = out.acknowledged.filter((v) => v >= 100 && v < 100 + ARMED_INSERTS);
      expect(out.errors.length).toBeGreaterThanOrEqual(1);
      expect(out.errors.length + armedAcknowledged.length).toBe(ARMED_INSERTS);
      if (stops) expect(armedAcknowledged).toEqual([]);
      expect(out.errors[0]).toBe(code);
      for (const e of out.errors.slice(1)) expect(e).toBe(stops ? 'WALNUT_FAILED' : 'WALNUT_CONFLICT/ChainBroken');
      if (where === 'header') {
        // a failed header write left no frame of the new generation: the old frame 1 is still there
        expect(out.frame1Pgno).not.toBe(0);
        if (scenario.startsWith('headerWrite')) expect(out.walHeaderChanged).toBe(false);
      } else if (scenario === 'framesWriteENOSPC') {
        // the header was written and synced first; the frames' write was refused before its first
        // byte: nothing to invalidate (frame 1 is the old generation's, whose salts the durable
        // new header no longer has: no frame of it), and the failure is definite
        expect(out.walHeaderChanged).toBe(true);
        expect(out.frame1OfHeader).toBe(false);
      } else {
        // the header was written and synced first; the failed frames were invalidated (frame 1's pgno zeroed)
        expect(out.walHeaderChanged).toBe(true);
        expect(out.frame1Pgno).toBe(0);
      }
      // a failed sync stops the store for good (reopen); otherwise the next commit restarts the WAL anew
      expect(out.after).toBe(stops ? 'WALNUT_FAILED' : null);
      const read = sqliteReads(file);
      expect(read.integrity).toBe('ok');
      expect(read.rows).toEqual([...out.acknowledged].sort((a, b) => a - b));
    });
  }
});
