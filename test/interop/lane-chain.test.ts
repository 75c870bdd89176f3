// Stores that share a commit lane (#21) and the store API of #20: the commit chain (fail-stop)
// is kept per store, so a member's failed commit refuses that member's later commits until its
// own resumeCommits(), never the leader's, and the leader's failure never refuses a member's;
// a conditional commit (base) of the leader conflicts with a member's commit made after the
// base (the leader writes it through its own connection), and a member that does not lead
// cannot make one (it would be checked against the wrong connection).
import * as path from 'node:path';
import { expect, it } from 'vitest';

import { open } from '../../lib/index';
import { HELPERS, runJsonChild } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

it('two stores on one lane: each keeps its own commit chain; the leader\'s base sees the member\'s commits; a member cannot commit on a base', async () => {
  const db = path.join(dir, 'lane-chain.db');
  const out = await runJsonChild<any>(path.join(HELPERS, 'lane-chain-child.js'), [db], { WALNUT_FAULT_INJECTION: '1' });
  expect(out.crashed).toBeUndefined();
  expect(out.unhandled).toEqual([]);
  expect([out.aLeads, out.bLeads]).toEqual([true, false]);
  // the member's failure
  expect(out.bFails).toMatchObject({ ok: false, code: 'WALNUT_IO' });
  expect(out.bAfter).toEqual({ ok: false, code: 'WALNUT_FAILED', reason: 'ChainBroken' });
  expect(out.aAfterB).toEqual({ ok: true });
  expect(out.bResume).toBe(true);
  expect(out.bResumed).toEqual({ ok: true });
  // the leader's failure
  expect(out.aFails).toMatchObject({ ok: false, code: 'WALNUT_IO' });
  expect(out.aAfter).toEqual({ ok: false, code: 'WALNUT_FAILED', reason: 'ChainBroken' });
  expect(out.bAfterA).toEqual({ ok: true });
  expect(out.aResume).toBe(true);
  expect(out.aResumed).toEqual({ ok: true });
  // bases
  expect(out.bBetween).toEqual({ ok: true });
  expect(out.aBase).toEqual({ ok: false, code: 'WALNUT_CONFLICT', reason: 'OtherWriter' });
  expect(out.bBase).toEqual({ ok: false, code: 'WALNUT_INVALID_ARGUMENT', reason: 'shareLane' });
  expect(out.aBaseClean).toEqual({ ok: true });
  // exactly the acknowledged pages, after a reopen
  const store = await open(db);
  const snap = await store.snapshot();
  const acked = new Map<number, number>(out.acknowledged.map((a: { pgno: number; v: number }) => [a.pgno, a.v]));
  for (let pgno = 2; pgno <= 12; pgno++) expect((await snap.read(pgno))[100], `page ${pgno}`).toBe(acked.get(pgno) ?? 0);
  snap.release();
  await store.close();
});
