// What a commit rejected with WALNUT_FAILED means after a reopen (DESIGN.md section 4's fault
// matrix; README "When a commit fails"): the frames of the failed batch are invalidated on disk,
// durably, before the failure is reported, so the commits do not appear after a reopen (nor
// after a power loss); when even that invalidation fails, the error says the outcome is unknown
// (reason OutcomeUnknown) and the commits may appear. Driven through the fault hook in child
// processes started with WALNUT_FAULT_INJECTION=1; the syscalls are read with strace.
// (A batch the index could not publish after its write: commit-pipeline.test.ts, same child.)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { HELPERS, runNode } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;
const fresh = (): string => path.join(dir, `o${n++}.db`);
const hasStrace = spawnSync('strace', ['-V']).status === 0;

/** Reopens `db` and reads byte 100 of each page (0 for a page never written). */
async function pageValues(db: string, pgnos: number[]): Promise<number[]> {
  const store = await open(db);
  try {
    const snap = await store.snapshot();
    try {
      const out: number[] = [];
      for (const p of pgnos) out.push((await snap.read(p))[100]!);
      return out;
    } finally {
      snap.release();
    }
  } finally {
    await store.close();
  }
}

describe('a batch whose WAL sync failed', () => {
  it.skipIf(!hasStrace)('its frames are invalidated durably: the zeroed frame headers are synced before the failure is reported', async () => {
    const db = fresh();
    const trace = `${db}.strace`;
    const r = spawnSync('strace', ['-f', '-qq', '-o', trace, '-e', 'trace=openat,pwrite64,pwritev,fdatasync,fsync', process.execPath, path.join(HELPERS, 'store-fault-child.js'), db, 'fsyncEIO'], {
      encoding: 'utf8',
      env: { ...process.env, WALNUT_FAULT_INJECTION: '1' },
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    for (const b of out.batch) expect(b).toMatchObject({ ok: false, code: 'WALNUT_FAILED' });
    const lines = fs.readFileSync(trace, 'utf8').split('\n');
    const wal = /openat\(AT_FDCWD, "[^"]*-wal", [^)]*\) = (\d+)/.exec(lines.find((l) => /-wal", .*O_RDWR/.test(l))!)![1];
    // the zeroing: 24 zero bytes over each of the failed batch's three frame headers (frames
    // 2..4 from 32 + 4120, 4120 bytes apart), not the first one's only (WalFile.invalidateFrom
    // says why), then the sync
    const zeroed = (offset: number) => lines.findIndex((l) => new RegExp(`pwrite(?:v|64)\\(${wal}, .*"(?:\\\\0){24}".*, ${offset}\\) = 24$`).test(l));
    const zeroings = [4152, 8272, 12392].map(zeroed);
    for (const z of zeroings) expect(z, "each of the failed batch's frame headers is zeroed").toBeGreaterThan(0);
    const zeroing = Math.max(...zeroings);
    const next = lines.slice(zeroing + 1).find((l) => new RegExp(`(?:pwrite64|pwritev|fdatasync|fsync)\\(${wal}[,)]`).test(l));
    expect(next, 'the next call on the WAL after the zeroing').toMatch(new RegExp(`(?:fdatasync|fsync)\\(${wal}\\)\\s+= 0`));
    expect(await pageValues(db, [2, 3, 4, 5])).toEqual([1, 0, 0, 0]);
  });

  it('when the invalidation fails too, WALNUT_FAILED says the outcome is unknown (reason OutcomeUnknown), and the commits may indeed appear after a reopen', async () => {
    const db = fresh();
    const r = await runNode(path.join(HELPERS, 'store-fault-child.js'), [db, 'fsyncEIOInvalidateFails'], { WALNUT_FAULT_INJECTION: '1' });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    for (const b of out.batch) expect(b).toMatchObject({ ok: false, code: 'WALNUT_FAILED', reason: 'OutcomeUnknown', causeReason: 'OutcomeUnknown' });
    // later calls never reached the WAL: their failure is certain
    expect(out.after).toMatchObject({ ok: false, code: 'WALNUT_FAILED' });
    expect(out.after.reason).toBeUndefined();
    // here the frames reached the page cache and nothing could zero them: they are recovered
    expect(await pageValues(db, [2, 3, 4, 5, 6])).toEqual([1, 2, 3, 4, 0]);
  });
});

describe('a batch whose write failed, and the sync of its invalidation too', () => {
  it('stops the store as any failed WAL sync does (WALNUT_FAILED, the batch OutcomeUnknown; resumeCommits cannot mend it): it went on committing, on a file whose earlier unsynced pages the failed sync may have dropped', async () => {
    const db = fresh();
    const r = await runNode(path.join(HELPERS, 'store-fault-child.js'), [db, 'shortWriteInvalidateSyncFails'], { WALNUT_FAULT_INJECTION: '1' });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    for (const b of out.batch) expect(b).toMatchObject({ ok: false, code: 'WALNUT_FAILED', reason: 'OutcomeUnknown', causeCode: 'WALNUT_IO', causeReason: 'OutcomeUnknown' });
    expect(out.after).toMatchObject({ ok: false, code: 'WALNUT_FAILED' });
    expect(out.after.reason).toBeUndefined();
    expect(out.resumed).toBe(false);
    expect(out.afterResume).toMatchObject({ ok: false, code: 'WALNUT_FAILED' });
    expect(out.acknowledged).toEqual([{ pgno: 2, v: 1 }]);
    // the batch's frames may or may not be there (OutcomeUnknown); nothing after it is
    expect((await pageValues(db, [2, 6, 7]))).toEqual([1, 0, 0]);
  });
});
