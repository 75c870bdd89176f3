// commit/page-arena.ts: a commit's copies are walnut's own, and no slab memory is handed out
// again while a commit that has not released its copies still holds it.
import { describe, expect, it } from 'vitest';

import { PageArena } from '../../lib/commit/page-arena';
import type { WalPage } from '../../lib/wal/wal-file';

const PAGE = 4096;
const SLAB_PAGES = 64; // 256 KiB of 4 KiB pages

function pages(n: number, fill: number): WalPage[] {
  return Array.from({ length: n }, (_, i) => ({ pgno: i + 2, data: new Uint8Array(PAGE).fill(fill) }));
}

describe('PageArena', () => {
  it('copies: the caller may change its buffers at once; the copies keep the bytes', () => {
    const arena = new PageArena(PAGE);
    const given = pages(3, 7);
    const buffers = given.map((p) => p.data);
    const copies = arena.copy(given);
    expect(copies).not.toBe(null);
    for (const b of buffers) b.fill(0xff);
    for (let i = 0; i < 3; i++) {
      expect(given[i]!.data).not.toBe(buffers[i]);
      expect(given[i]!.data.every((x) => x === 7)).toBe(true);
    }
  });

  it('never hands out memory a commit still holds; reuses it once released (a second release changes nothing)', () => {
    const arena = new PageArena(PAGE);
    const buffers = new Map<ArrayBuffer, number>();
    const at = (d: Uint8Array) => {
      if (!buffers.has(d.buffer as ArrayBuffer)) buffers.set(d.buffer as ArrayBuffer, buffers.size);
      return `${buffers.get(d.buffer as ArrayBuffer)}:${d.byteOffset}`; // which buffer, where in it
    };
    const kept = pages(1, 1);
    const keptCopies = arena.copy(kept)!;
    const first = [];
    for (let i = 0; i < 4 * SLAB_PAGES; i++) {
      const p = pages(1, 2);
      first.push({ copies: arena.copy(p)!, data: p[0]!.data });
    }
    const live = new Set([at(kept[0]!.data), ...first.map((o) => at(o.data))]);
    expect(live.size).toBe(1 + first.length); // no two commits held at once share memory
    for (const o of first) o.copies.release();
    for (const o of first) o.copies.release(); // twice: nothing more
    const released = new Set(first.map((o) => o.data));
    const second = [];
    for (let i = 0; i < 4 * SLAB_PAGES; i++) {
      const p = pages(1, 3);
      second.push({ copies: arena.copy(p)!, data: p[0]!.data });
    }
    const live2 = new Set([at(kept[0]!.data), ...second.map((o) => at(o.data))]);
    expect(live2.size).toBe(1 + second.length);
    expect(kept[0]!.data.every((x) => x === 1)).toBe(true); // held throughout: never overwritten
    expect(second.filter((o) => released.has(o.data)).length).toBeGreaterThan(0); // released memory came back
    for (const o of second) expect(o.data.every((x) => x === 3)).toBe(true);
    keptCopies.release();
  });

  it('a lone committer copies into the same bytes every time once its last commit released them', () => {
    const arena = new PageArena(PAGE);
    const a = pages(1, 1);
    arena.copy(a)!.release();
    const b = pages(1, 2);
    const cb = arena.copy(b)!;
    expect(b[0]!.data.buffer).toBe(a[0]!.data.buffer);
    expect(b[0]!.data.byteOffset).toBe(a[0]!.data.byteOffset);
    // a stale release of an earlier use does not free the current one
    const c = pages(1, 3);
    const stale = arena.copy(c)!;
    expect(c[0]!.data.byteOffset).not.toBe(b[0]!.data.byteOffset);
    cb.release();
    cb.release();
    stale.release();
  });

  it('a commit larger than a slab gets a buffer of its own (nothing to release)', () => {
    const arena = new PageArena(PAGE);
    const big = pages(SLAB_PAGES + 1, 9);
    expect(arena.copy(big)).toBe(null);
    expect(new Set(big.map((p) => p.data.buffer)).size).toBe(1);
    expect(big.every((p) => p.data.length === PAGE && p.data.every((x) => x === 9))).toBe(true);
  });
});
