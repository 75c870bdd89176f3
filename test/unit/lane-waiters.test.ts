// commit/lane-waiters.ts: a lane member's unsettled commits by lane id — each settles once, with
// its own outcome, in any order (holes, growth past the ring, ids settled twice or never added).
import { describe, expect, it } from 'vitest';

import { LaneWaiters } from '../../lib/commit/lane-waiters';

const result = (n: number) => ({ commitSeq: n, firstFrame: n, lastFrame: n, durable: false });

describe('LaneWaiters', () => {
  it('settles each commit once with its own outcome, in and out of order, across ring growth and wrap-around', async () => {
    const w = new LaneWaiters();
    const settled = new Map<number, string>();
    const add = (id: number) => {
      w.add(id).then((r) => settled.set(id, `ok ${r.commitSeq}`), (e: Error) => settled.set(id, `failed ${e.message}`));
    };
    // ascending ids with gaps (other members' ids in between), more than the initial 64 slots
    let next = 1;
    const ids: number[] = [];
    for (let i = 0; i < 150; i++) {
      next += 1 + (i % 3);
      ids.push(next);
      add(next);
    }
    expect(w.size).toBe(150);
    // out of order: every third rejected first (holes behind the head), then the rest resolved
    for (let i = 2; i < ids.length; i += 3) expect(w.reject(ids[i]!, new Error(`no ${ids[i]}`))).toBe(true);
    expect(w.size).toBe(100);
    // an id settled already, one never added, one below the head: not waited for
    expect(w.has(ids[2]!)).toBe(false);
    expect(w.resolve(ids[2]!, result(0))).toBe(false);
    expect(w.resolve(ids[0]! + 1, result(0))).toBe(false);
    expect(w.reject(1, new Error('x'))).toBe(false);
    for (let i = 0; i < ids.length; i++) if (i % 3 !== 2) expect(w.resolve(ids[i]!, result(ids[i]!))).toBe(true);
    expect(w.size).toBe(0);
    // the ring wraps: more adds after its head moved, settled newest first
    const more: number[] = [];
    for (let i = 0; i < 200; i++) more.push((next += 2));
    for (const id of more) add(id);
    for (const id of [...more].reverse()) expect(w.resolve(id, result(id))).toBe(true);
    expect(w.size).toBe(0);
    await new Promise((r) => setImmediate(r));
    for (let i = 0; i < ids.length; i++) expect(settled.get(ids[i]!)).toBe(i % 3 === 2 ? `failed no ${ids[i]}` : `ok ${ids[i]}`);
    for (const id of more) expect(settled.get(id)).toBe(`ok ${id}`);
    expect(settled.size).toBe(ids.length + more.length);
  });

  it('the head moves past holes: an old commit settled last leaves the ring empty', () => {
    const w = new LaneWaiters();
    for (let id = 10; id < 20; id++) void w.add(id).catch(() => undefined);
    for (let id = 11; id < 20; id++) expect(w.resolve(id, result(id))).toBe(true);
    expect(w.size).toBe(1);
    expect(w.has(10)).toBe(true);
    expect(w.reject(10, new Error('late'))).toBe(true);
    expect(w.size).toBe(0);
    for (let id = 10; id < 20; id++) expect(w.has(id)).toBe(false);
  });
});
