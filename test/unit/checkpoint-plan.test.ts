// The checkpoint planner over its whole state space (fast-check): never copies past a busy
// reader's mark, completes exactly when nothing limits it, resets the WAL only when complete
// and no reader uses the WAL, and reports busy as SQLite does.
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { planCheckpoint, READMARK_NOT_USED, type CheckpointMode } from '../../lib/checkpoint/plan';

const modes: CheckpointMode[] = ['passive', 'full', 'restart', 'truncate'];

const stateArb = fc
  .record({
    mxFrame: fc.integer({ min: 0, max: 50 }),
    nBackfillFrac: fc.double({ min: 0, max: 1, noNaN: true }),
    marks: fc.array(fc.oneof(fc.integer({ min: 0, max: 50 }), fc.constant(READMARK_NOT_USED)), { minLength: 4, maxLength: 4 }),
    busy: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
  })
  .map(({ mxFrame, nBackfillFrac, marks, busy }) => ({
    mxFrame,
    nBackfill: Math.floor(nBackfillFrac * mxFrame),
    readMarks: [0, ...marks.map((m) => (m === READMARK_NOT_USED ? m : Math.min(m, mxFrame)))],
    readerBusy: [false, ...busy],
  }));

describe('planCheckpoint', () => {
  it('never backfills past a busy reader whose mark is below mxFrame', () => {
    fc.assert(
      fc.property(stateArb, fc.constantFrom(...modes), (s, mode) => {
        const p = planCheckpoint(s, mode);
        expect(p.mxSafeFrame).toBeLessThanOrEqual(s.mxFrame);
        for (let i = 1; i <= 4; i++) {
          if (s.readerBusy[i] && s.readMarks[i]! < s.mxFrame) expect(p.mxSafeFrame).toBeLessThanOrEqual(s.readMarks[i]!);
        }
        if (p.backfill) {
          expect(p.backfill.after).toBe(s.nBackfill);
          expect(p.backfill.upTo).toBe(p.mxSafeFrame);
          expect(p.backfill.upTo).toBeGreaterThan(p.backfill.after);
        }
      }),
    );
  });

  it('is limited only by busy readers: with none busy it always completes', () => {
    fc.assert(
      fc.property(stateArb, fc.constantFrom(...modes), (s, mode) => {
        const idle = { ...s, readerBusy: [false, false, false, false, false] };
        const p = planCheckpoint(idle, mode);
        expect(p.mxSafeFrame).toBe(s.mxFrame);
        expect(p.complete).toBe(true);
        expect(p.busy).toBe(false);
        expect(p.postAction).toBe(mode === 'restart' || mode === 'truncate' ? mode : 'none');
      }),
    );
  });

  it('resets the WAL only when complete and no reader holds a WAL read lock; busy as SQLite reports', () => {
    fc.assert(
      fc.property(stateArb, fc.constantFrom(...modes), (s, mode) => {
        const p = planCheckpoint(s, mode);
        const readers = [1, 2, 3, 4].some((i) => s.readerBusy[i]);
        if (p.postAction !== 'none') {
          expect(p.complete).toBe(true);
          expect(readers).toBe(false);
        }
        if (mode === 'passive') expect(p.busy).toBe(false);
        if (mode === 'full') expect(p.busy).toBe(!p.complete);
        if (mode === 'restart' || mode === 'truncate') expect(p.busy).toBe(!p.complete || readers);
      }),
    );
  });

  it('rewrites only idle slots whose mark was below the safe frame when visited (slot 1 to that frame, others to unused)', () => {
    fc.assert(
      fc.property(stateArb, (s) => {
        const p = planCheckpoint(s, 'passive');
        for (const u of p.markUpdates) {
          expect(s.readerBusy[u.slot]).toBe(false);
          expect(s.readMarks[u.slot]!).toBeLessThan(s.mxFrame);
          if (u.slot === 1) {
            // slot 1 is visited first, so it gets the safe frame as it was then: mxFrame
            expect(u.value).toBe(s.mxFrame);
          } else {
            expect(u.value).toBe(READMARK_NOT_USED);
          }
        }
      }),
    );
  });

  it("matches SQLite's observed results", () => {
    // a reader at frame 2 of 4: passive stops there (0|4|2), restart is busy (1|4|2)
    const s = { mxFrame: 4, nBackfill: 0, readMarks: [0, 2, READMARK_NOT_USED, READMARK_NOT_USED, READMARK_NOT_USED], readerBusy: [false, true, false, false, false] };
    expect(planCheckpoint(s, 'passive')).toMatchObject({ mxSafeFrame: 2, busy: false, backfill: { after: 0, upTo: 2 } });
    expect(planCheckpoint(s, 'restart')).toMatchObject({ busy: true, postAction: 'none' });
  });
});
