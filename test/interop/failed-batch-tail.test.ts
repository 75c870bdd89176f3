// A failed batch's frames must stay invisible to recovery after a later, shorter batch is
// written over its start. A write or sync failure leaves the batch's frames (some or all of
// them) in the WAL, unpublished; the next batch is appended at the same offset. When that batch
// is the failed one's first commits again, byte for byte (a caller retrying its transaction as it
// was), its frames carry the same salts and the same running checksums, so the failed batch's
// later frames continue a valid checksum chain after it: a recovery (sqlite3's or walnut's first
// connection after a crash) read their commit frame and brought back commits whose callers were
// told they failed. Driven in failed-tail-child.js (fault injection; the child ends with SIGKILL),
// checked here by a walnut reopen and by the sqlite3 CLI's recovery and checkpoint, each on its
// own copy of the files. Also: with an FEC sidecar (its repair must not rebuild the failed frames),
// and an invalidation cut short (OutcomeUnknown: what a read after the reopen finds must stay).
// Two fixes each stop the revival in the write/sync cases: the failed batch's every frame header
// zeroed (889e449) and the append's zeros over the next slot's frame header (4c76cd0,
// native/frames.cc: the retry's tail cuts the chain at T2's first frame). With either alone they
// pass; with both removed all 6 cases fail (measured 2026-12-07, 2 of 2 runs). The zeroing cases
// fail with 889e449's part removed alone. test/interop/dropped-tail-crash guards 4c76cd0 alone.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { describe, expect, it } from 'vitest';

import { open } from '../../lib/index';
import { HELPERS, runJsonChild, spawnOutput } from '../helpers/children';
import { expectAcknowledgedPages } from '../helpers/outcomes';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

/** A copy of `db` with its -wal and -shm, as the crash left them. */
function copyOf(db: string, name: string): string {
  const copy = path.join(dir, name);
  for (const suffix of ['', '-wal', '-shm']) if (fs.existsSync(db + suffix)) fs.copyFileSync(db + suffix, copy + suffix);
  return copy;
}

/** Byte 100 of pages `pgnos` of the database file `db` (after a complete checkpoint). */
function fileBytes(db: string, pgnos: number[]): number[] {
  const bytes = fs.readFileSync(db);
  return pgnos.map((pgno) => bytes[(pgno - 1) * 4096 + 100]!);
}

describe("a failed batch's frames after a retried prefix of it", () => {
  // zero-ahead: the batch is written over zeros the store wrote and synced ahead of its frames
  // (the invalidation finds them zeros, the first frame's header aside, and leaves them)
  for (const [scenario, code, mode] of [['write', 'WALNUT_IO/', ''], ['sync', 'WALNUT_FAILED/', ''], ['write', 'WALNUT_IO/', 'zero-ahead']] as const) {
    it(`${scenario}${mode === '' ? '' : `, ${mode}`}: the three transactions are rejected (${code}), T1's retry is acknowledged, and after a crash neither walnut's nor sqlite3's recovery finds T2 or T3`, async () => {
      const db = path.join(dir, `${scenario}${mode}.db`);
      const out = await runJsonChild<{ batch: string[]; retry: string; walBytes?: number; unhandled: string[] }>(path.join(HELPERS, 'failed-tail-child.js'), [db, scenario, mode], { WALNUT_FAULT_INJECTION: '1' });
      expect(out.unhandled).toEqual([]);
      if (mode === 'zero-ahead') expect(out.walBytes).toBe(8 << 20); // zeros past the first commit's frames (wal-file.ts ZERO_AHEAD)
      expect(out.batch).toEqual([code, code, code]);
      expect(out.retry).toBe('ok');
      const acknowledged = [2, 3, 4, 5].map((pgno) => ({ pgno, v: 1 })).concat([{ pgno: 2, v: 2 }]);
      const bySqlite = copyOf(db, `${scenario}${mode}-sqlite3.db`);
      await expectAcknowledgedPages(copyOf(db, `${scenario}${mode}-walnut.db`), acknowledged, 2, 5);
      const r = await spawnOutput('sqlite3', [bySqlite, 'PRAGMA wal_checkpoint(TRUNCATE);']);
      expect(r.stdout.trim()).toBe('0|0|0'); // recovered, then everything was copied
      expect(fileBytes(bySqlite, [2, 3, 4, 5])).toEqual([2, 1, 1, 1]);
    });
  }

  // With an FEC sidecar: no group covers the failed batch's frames (groups are made for
  // written batches only, once their append returned), so the sidecar's repair, which rebuilds
  // damaged frames a group covers, never rewrites a zeroed header back into a chain.
  it('write, with an FEC sidecar: its recovery repairs nothing and finds neither T2 nor T3', async () => {
    const db = path.join(dir, 'write-fec.db');
    const out = await runJsonChild<{ batch: string[]; retry: string; fecGroups: number; unhandled: string[] }>(path.join(HELPERS, 'failed-tail-child.js'), [db, 'write', 'fec'], { WALNUT_FAULT_INJECTION: '1' });
    expect(out.unhandled).toEqual([]);
    expect(out.batch).toEqual(['WALNUT_IO/', 'WALNUT_IO/', 'WALNUT_IO/']);
    expect(out.retry).toBe('ok');
    expect(out.fecGroups).toBe(2); // the first commit's and the retry's: none for the failed batch
    const store = await open(db, { fec: { repairSymbols: 2 }, autoCheckpoint: false });
    try {
      const snap = await store.snapshot();
      const pages = [];
      for (const pgno of [2, 3, 4, 5]) pages.push((await snap.read(pgno))[100]);
      snap.release();
      expect(pages).toEqual([2, 1, 1, 1]);
      const fec = store.metrics().fec as { recovery: { repairedFrames: number; fallbacks: Record<string, number> } };
      expect(fec.recovery.repairedFrames).toBe(0);
    } finally {
      await store.close();
    }
  });

  // The invalidation itself fails part way (its second header write: EIO). The commits' outcome
  // is unknown, and a caller reads after the reopen to find out: what it reads must stay so. The
  // headers were zeroed first to last: the first frame's zeroed, the second's not, the reopen
  // found none of the batch, and T1's identical retry revived T2 after a crash (page 3 = 3).
  for (const mode of ['', 'zero-ahead'] as const) {
    it(`zeroing${mode === '' ? '' : `, ${mode}`}: the invalidation fails part way (OutcomeUnknown); what a read after the reopen finds of the batch is what every recovery finds after the retry and a crash`, async () => {
      const db = path.join(dir, `zeroing${mode}.db`);
      const out = await runJsonChild<{ batch: string[]; close: string; read: { pgno: number; v: number }[]; retry: string; unhandled: string[] }>(path.join(HELPERS, 'failed-tail-child.js'), [db, 'zeroing', mode], { WALNUT_FAULT_INJECTION: '1' });
      expect(out.unhandled).toEqual([]);
      expect(out.batch).toEqual(['WALNUT_FAILED/OutcomeUnknown', 'WALNUT_FAILED/OutcomeUnknown', 'WALNUT_FAILED/OutcomeUnknown']);
      expect(out.retry).toBe('ok');
      expect(out.read.map((r) => r.v)).not.toContain(0); // the reopen read every page
      const acknowledged = out.read.concat([{ pgno: 2, v: 2 }]);
      const bySqlite = copyOf(db, `zeroing${mode}-sqlite3.db`);
      await expectAcknowledgedPages(copyOf(db, `zeroing${mode}-walnut.db`), acknowledged, 2, 5);
      const r = await spawnOutput('sqlite3', [bySqlite, 'PRAGMA wal_checkpoint(TRUNCATE);']);
      expect(r.stdout.trim()).toBe('0|0|0');
      expect(fileBytes(bySqlite, [2, 3, 4, 5])).toEqual([2, 3, 4, 5].map((pgno) => acknowledged.filter((a) => a.pgno === pgno).pop()!.v));
    });
  }
});
