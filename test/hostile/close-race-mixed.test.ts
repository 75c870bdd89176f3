// close() at a random point of a burst of mixed store verbs (a seeded xorshift32: the same
// cases each run): commits, transactions, sequenced commits, snapshots held for a moment,
// checkpoints of every mode, write leases, metrics, beside the store's own follow export into a
// stream read as it comes; the store with or without the FEC sidecar, autoCheckpoint 2 or 8,
// keepWal or not. One store, no other connection: nothing may wait for a lock the busy timeout
// through, so the busy timeout is set far past the hang guard (such a wait is a hang here), and
// WALNUT_BUSY (or the WALNUT_FAILED ChainBroken it leads to) is a failure. (Such a burst, at
// busyTimeout 1000, found the checkpoint that waited out the busy timeout for the follow
// export's pin taken meanwhile: checkpoint-follow-pin-taken-meanwhile.test.ts.)
// Asserted for each case: every call settles within a hang guard; a rejection is WALNUT_CLOSED
// (a transaction's first-committer-wins WALNUT_CONFLICT too); close() resolves; no unhandled
// rejection; sqlite3's integrity_check and walnut's verify (level 5) are ok; each page holds
// the value of its last acknowledged commit; with the sidecar and a WAL kept, recoverWithRepair
// repairs nothing and falls back for nothing; the export's stream (cut by close) restores to a
// database sqlite3 finds whole, or is empty (close() came before its header).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/index';
import { restore } from '../../lib/export/restore';
import { recoverWithRepair } from '../../lib/fec/recover';
import { verify } from '../../lib/integrity/verify';
import { seededRandom } from '../helpers/wal-damage';
import { type Outcome, call, expectNoUnhandledRejections, outcomeOf } from '../helpers/outcomes';
import { Database } from '../helpers/sqlite';
import { sqliteIntegrity } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir();
const PAGE = 4096;
/**
 * A hang guard, not a speed check: a seed takes 0.3 s quiet and took up to 5.7 s at load 30
 * (seed 15, the longest burst before its close: ~60 commits, each synced, and three FULL or
 * TRUNCATE checkpoints); 20 s left under 4x of that for a spike of load or disk syncs.
 */
const HANG_MS = 60_000;
/** Far past the hang guard: a wait the busy timeout through is a hang here (one store, no other connection). */
const BUSY_MS = 120_000;
/** The overflow pages the commits rewrite (a 40-page row's: 3..42). */
const PAGES = Array.from({ length: 18 }, (_, k) => 3 + k);

function settle(p: () => unknown): Promise<Outcome> {
  return outcomeOf(call(p));
}

function database(file: string): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(v BLOB)');
  db.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(40 * PAGE, 1));
  db.close();
}

describe('close() at a random point of a burst of mixed verbs', () => {
  for (let seed = 1; seed <= 16; seed++) {
    it(`seed ${seed}: every call settles (WALNUT_CLOSED or a transaction's conflict, never BUSY), close() resolves; the database, its sidecar and the export stream stay whole; acknowledged commits kept`, async () => {
      const below = seededRandom(seed * 7919);
      const rnd = (): number => below(1 << 30) / (1 << 30); // in [0, 1)
      const file = path.join(dir, `m${seed}.db`);
      database(file);
      const links = new Map(PAGES.map((p) => [p, fs.readFileSync(file).subarray((p - 1) * PAGE, (p - 1) * PAGE + 4)]));
      const fec = rnd() < 0.5;
      const keepWal = rnd() < 0.3;
      const store = await open(file, { autoCheckpoint: rnd() < 0.5 ? 2 : 8, busyTimeout: BUSY_MS, keepWal, ...(fec ? { fec: { repairSymbols: 2, codec: 'rs' as const } } : {}) });
      const out = new PassThrough();
      const chunks: Buffer[] = [];
      out.on('data', (c: Buffer) => chunks.push(c));
      const exported = settle(() => store.exportTo(out, { follow: true }).done);
      // the last acknowledged write of each page: its place in the burst and its value
      const acked = new Map<number, { at: number; v: number }>();
      const ack = (pgno: number, at: number, v: number) => () => {
        if ((acked.get(pgno)?.at ?? -1) < at) acked.set(pgno, { at, v });
      };
      const calls: Array<Promise<[string, Outcome]>> = [];
      const count = 20 + Math.floor(rnd() * 60);
      const closeAt = Math.floor(rnd() * count);
      let closing: Promise<Outcome> | null = null;
      for (let i = 0; i < count; i++) {
        if (i === closeAt) closing = settle(() => store.close());
        const pgno = PAGES[Math.floor(rnd() * PAGES.length)]!;
        const v = (10 + i) & 0xff;
        const data = Buffer.concat([links.get(pgno)!, Buffer.alloc(PAGE - 4, v)]);
        const k = rnd();
        const hold = rnd() * 3;
        const mode = (['passive', 'full', 'restart', 'truncate'] as const)[Math.floor(rnd() * 4)]!;
        const call = (kind: string, f: () => unknown, then?: () => void) =>
          calls.push(settle(f).then((r) => {
            if (r.ok) then?.();
            return [kind, r];
          }));
        if (k < 0.5) call('commit', () => store.commit([{ pgno, data }]), ack(pgno, i, v));
        else if (k < 0.6) {
          call('transaction', async () => {
            const tx = store.begin();
            await tx.read(pgno);
            tx.write(pgno, data);
            return tx.commit();
          }, ack(pgno, i, v));
        } else if (k < 0.7) {
          call('snapshot', async () => {
            const s = await store.snapshot();
            await new Promise((resolve) => setTimeout(resolve, hold));
            try {
              return (await s.read(pgno))[100];
            } finally {
              s.release();
            }
          });
        } else if (k < 0.8) call(`checkpoint ${mode}`, () => store.checkpoint(mode));
        else if (k < 0.85) call('sequence', () => store.sequence([{ pgno, data }]).durable, ack(pgno, i, v));
        else if (k < 0.9) {
          call('lease', async () => {
            await store.holdWriteLease();
            await new Promise((resolve) => setTimeout(resolve, 1));
            store.releaseWriteLease();
          });
        } else call('metrics', () => store.metrics());
        if (rnd() < 0.3) await new Promise((resolve) => (rnd() < 0.5 ? setImmediate(resolve) : setTimeout(resolve, hold)));
      }
      closing ??= settle(() => store.close());
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`seed ${seed}: a call did not settle within ${HANG_MS} ms`)), HANG_MS);
      });
      const [outcomes, closed, exportEnd] = await Promise.race([Promise.all([Promise.all(calls), closing, exported]), hang]).finally(() => clearTimeout(timer));
      expect(closed).toEqual({ ok: true, value: undefined });
      if (!exportEnd.ok) expect(exportEnd).toMatchObject({ code: 'WALNUT_CLOSED', walnut: true });
      for (const [kind, r] of outcomes) {
        if (r.ok) continue;
        const allowed = kind === 'transaction' ? ['WALNUT_CLOSED', 'WALNUT_CONFLICT'] : ['WALNUT_CLOSED'];
        expect(allowed, `${kind}: ${r.message}`).toContain(r.code);
        expect(r.walnut).toBe(true);
      }
      expect(sqliteIntegrity(file)).toEqual(['ok']);
      expect(await verify(file, 5)).toMatchObject({ ok: true, issues: [] });
      if (fec && fs.existsSync(`${file}-wal`)) expect(await recoverWithRepair(file)).toMatchObject({ repairedFrames: 0, fallback: null });
      const reopened = await open(file);
      try {
        const snap = await reopened.snapshot();
        for (const [pgno, { v }] of acked) expect(snap.readSync(pgno)[100], `page ${pgno}`).toBe(v);
        snap.release();
      } finally {
        await reopened.close();
      }
      const stream = Buffer.concat(chunks);
      if (stream.length > 0) {
        const target = path.join(dir, `m${seed}.restored.db`);
        await restore(stream, target);
        expect(sqliteIntegrity(target)).toEqual(['ok']);
      }
    });
  }
});
