// The native commit framer in delta mode (native/commit_records.h: new CommitFramer(budget), the
// replication's records) against its reference: the plain records of the reference encoder
// (lib/export/commit-records.ts), then what lib/replicate/publisher.ts made of them before the
// encoding moved into the WAL read: each frame whose page has a version (JavaScript PageVersions,
// the same budget) as PAGE_DELTA when encodePageDeltaJs gives one, runs of whole frames cut at
// runFrames, before a delta and at the end of each FRAMES record, every frame moving its page's
// version on, a commit that shrinks the database dropping the versions past it. Random pages
// rewritten a few bytes at a time (and sometimes whole), random commit sizes (shrinking and
// growing), base pages kept first, runs cut inside transactions, budgets from none to all.
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { CommitRecordEncoder, commitRecordsBound, framesPerRecordOf } from '../../lib/export/commit-records';
import { encodePageDeltaJs, PageVersions } from '../../lib/export/page-delta';
import { encodeFramesRecord, KIND } from '../../lib/export/records';
import { nativeExportIo } from '../../lib/native';
import { expectWalnutError } from '../helpers/expect-error';

function framed(payloads: Uint8Array[]): Buffer {
  const parts: Buffer[] = [];
  for (const p of payloads) {
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(p.length));
    parts.push(len, Buffer.from(p));
  }
  return Buffer.concat(parts);
}

/** What the publisher made of the plain records (see the header). */
class Reference {
  readonly versions: PageVersions;
  dbSize = 0;
  constructor(budget: number, readonly pageSize: number, readonly runFrames: number) {
    this.versions = new PageVersions(budget);
  }
  records(plain: Uint8Array[]): Uint8Array[] {
    const frameSize = 24 + this.pageSize;
    const out: Uint8Array[] = [];
    for (const p of plain) {
      if (p[0] !== KIND.FRAMES) {
        out.push(p);
        continue;
      }
      let run: Uint8Array[] = [];
      const flush = (): void => {
        if (run.length > 0) out.push(encodeFramesRecord(run));
        run = [];
      };
      for (let at = 1; at + frameSize <= p.length; at += frameSize) {
        const frame = p.subarray(at, at + frameSize);
        const dv = new DataView(frame.buffer, frame.byteOffset, 8);
        const pgno = dv.getUint32(0);
        const commitSize = dv.getUint32(4);
        const previous = this.versions.get(pgno);
        const delta = previous === undefined ? null : encodePageDeltaJs(frame, previous);
        if (delta !== null) {
          flush();
          out.push(delta);
        } else {
          if (run.length === this.runFrames) flush();
          run.push(frame);
        }
        this.versions.set(pgno, frame.subarray(24));
        if (commitSize !== 0) {
          this.versions.truncate(commitSize); // past the commit's end: a shrink, or pages the transaction spilled past it
          this.dbSize = commitSize;
        }
      }
      flush();
    }
    return out;
  }
}

/** xorshift32 */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

const cases = fc.record({
  pageSize: fc.constantFrom(512, 1024, 4096),
  frames: fc.integer({ min: 1, max: 60 }),
  pages: fc.integer({ min: 1, max: 12 }),
  basePages: fc.integer({ min: 0, max: 8 }),
  budgetPages: fc.constantFrom(0, 1, 3, 100),
  runFrames: fc.integer({ min: 1, max: 5 }),
  cuts: fc.array(fc.integer({ min: 1, max: 59 }), { maxLength: 5 }),
  seed: fc.integer(),
});

describe('native replication framing (delta mode)', () => {
  it("writes exactly the publisher's former records: deltas, runs, versions, truncation", () => {
    let deltas = 0;
    fc.assert(
      fc.property(cases, ({ pageSize, frames, pages, basePages, budgetPages, runFrames, cuts, seed }) => {
        const next = rng(seed);
        const frameSize = 24 + pageSize;
        const content = new Map<number, Buffer>();
        const pageOf = (pgno: number): Buffer => {
          let c = content.get(pgno);
          if (c === undefined) content.set(pgno, (c = Buffer.alloc(pageSize, pgno)));
          return c;
        };
        const budget = budgetPages * pageSize;
        const native = new nativeExportIo.CommitFramer(budget);
        const ref = new Reference(budget, pageSize, runFrames);
        // the base image
        const base = Buffer.concat(Array.from({ length: basePages }, (_, i) => pageOf(i + 1)));
        if (basePages > 0) native.keepPages(1, base, pageSize);
        for (let i = 0; i < basePages; i++) ref.versions.set(i + 1, base.subarray(i * pageSize, (i + 1) * pageSize));
        native.setDbSize(basePages);
        ref.dbSize = basePages;
        // frames: pages rewritten a few bytes at a time, sometimes whole; commits of random sizes
        const all = Buffer.alloc(frames * frameSize);
        for (let i = 0; i < frames; i++) {
          const pgno = 1 + (next() % pages);
          const page = pageOf(pgno);
          if (next() % 5 === 0) for (let k = 0; k < pageSize; k++) page[k] = next() & 0xff;
          else {
            for (let k = next() % 4; k >= 0; k--) page[next() % pageSize] = next() & 0xff; // bytes here and there
            const at = next() % pageSize;
            page.fill(next() & 0xff, at, Math.min(pageSize, at + (next() % 80))); // and a row's worth
          }
          const at = i * frameSize;
          all.writeUInt32BE(pgno, at);
          all.writeUInt32BE(next() % 3 === 0 ? 1 + (next() % (pages + 2)) : 0, at + 4);
          for (let k = 8; k < 24; k++) all[at + k] = next() & 0xff;
          page.copy(all, at + 24);
        }
        const ends = [...new Set(cuts.filter((c) => c < frames)), frames].sort((a, b) => a - b);
        const plain = new CommitRecordEncoder();
        let seq = 10;
        let from = 0;
        for (const end of ends) {
          const piece = all.subarray(from * frameSize, end * frameSize);
          const out = Buffer.alloc(commitRecordsBound(end - from, pageSize));
          const r = native.frameBytes(piece, pageSize, runFrames, seq, 1234, out);
          const expected = framed(ref.records(plain.encode(piece, pageSize, framesPerRecordOf(pageSize), BigInt(seq), 1234n).payloads));
          expect(out.subarray(0, r.bytes).toString('hex')).toBe(expected.toString('hex'));
          for (let at = 0; at < r.bytes; at += 8 + Number(out.readBigUInt64BE(at))) if (out[at + 8] === KIND.PAGE_DELTA) deltas++;
          seq += r.commits;
          from = end;
        }
      }),
      { numRuns: 300 },
    );
    expect(deltas).toBeGreaterThan(100); // the deltas were exercised, not only whole frames
  });

  it('refuses keepPages on a framer without versions, and pages that are not whole pages', () => {
    expectWalnutError(() => new nativeExportIo.CommitFramer().keepPages(1, new Uint8Array(512), 512), 'WALNUT_INVALID_ARGUMENT');
    const f = new nativeExportIo.CommitFramer(1 << 20);
    expectWalnutError(() => f.keepPages(1, new Uint8Array(700), 512), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => f.keepPages(0, new Uint8Array(512), 512), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => f.keepPages(1, new Uint8Array(512), 500), 'WALNUT_INVALID_ARGUMENT');
  });
});
