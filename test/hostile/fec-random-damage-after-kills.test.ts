// FEC repair (recoverWithRepair) of WALs written by random commit batches, some after a writer
// SIGKILLed at its fdatasync with its frames unpublished (fec-killed-writer-child.js, the
// killAtSync fault rule) and retried by the surviving store (its zeroed frame header then ends
// the log over the killed writer's frames), with real damage put into a random sidecar group:
//  - the first or the last frame header of a group zeroed (as an append's tail looks),
//  - up to repairSymbols (2) whole frames of a group zeroed,
//  - every frame of a group zeroed (past repair when the group has more than 2),
//  - junk (random bytes) over the frame after the log's last frame, a header's worth or all of it.
// Asserted: damage a group can repair is repaired, the log whole (walFrames = every frame
// written) with no fallback (before 2026-12's fix a killed writer's retried tail reported
// 'unprotected-tail'); damage past repair is reported (a fallback with its reason), never taken for the end
// of the log (fewer frames with fallback null); junk past the last frame keeps the log whole,
// reported as an unprotected tail only where the killed writer's frames follow it (a torn frame
// between the log and frames of its generation: what a crash mid-append leaves; not hidden).
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect, it } from 'vitest';

import { scanSidecar } from '../../lib/fec/sidecar';
import { open, recoverWithRepair, WalnutFile } from '../../lib/index';
import { HELPERS, runNode } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';
import { seededRandom } from '../helpers/wal-damage';

const dir = tmpDir();
const PS = 4096;
const FRAME = 24 + PS;
const ROUNDS = 40;
const child = path.join(HELPERS, 'fec-killed-writer-child.js');

const DAMAGE = ['group-first-header', 'repairable-frames', 'whole-group', 'group-last-header', 'junk-past-end'] as const;

it(`random commits, killed writers retried, random damage (${ROUNDS} rounds): repaired or reported, never hidden as the end of the log`, async () => {
  const rand = seededRandom(0xfec7a11);
  const wrong: string[] = [];
  const seen = new Set<string>();
  for (let round = 0; round < ROUNDS; round++) {
    const db = path.join(dir, `r${round}.db`);
    const store = await open(db, { pageSize: PS, autoCheckpoint: false, keepWal: true, shareLane: false, fec: { repairSymbols: 2 } });
    let frames = 0;
    const commitSome = async (n: number, v: number): Promise<void> => {
      for (let c = 0; c < n; c++) frames = (await store.commit(Array.from({ length: 1 + rand(4) }, (_, j) => ({ pgno: 2 + j, data: Buffer.alloc(PS, v + c) })))).lastFrame;
    };
    await commitSome(1 + rand(6), 1);
    const killed = rand(2) === 0;
    if (killed) {
      expect((await runNode(child, ['killed', db, String(PS)], { WALNUT_FAULT_INJECTION: '1' })).stdout).toBe(''); // SIGKILLed at its sync
      await commitSome(1 + rand(4), 100);
    }
    for (let i = 0; i < 500 && !(store.metrics().fec!.frames >= frames && store.metrics().fec!.queuedBytes === 0); i++) await new Promise((r) => setTimeout(r, 10));
    const copy = path.join(dir, `r${round}-copy.db`);
    for (const suffix of ['', '-wal', '-wal-fec']) fs.copyFileSync(db + suffix, copy + suffix);
    await store.close();
    const sidecar = WalnutFile.openSync(`${copy}-wal-fec`, { readOnly: true });
    const groups = scanSidecar(sidecar).groups;
    sidecar.closeSync();
    const g = groups[rand(groups.length)]!;
    const kind = DAMAGE[rand(DAMAGE.length)]!;
    const fd = fs.openSync(`${copy}-wal`, 'r+');
    const zero = (frame: number, bytes: number): void => void fs.writeSync(fd, Buffer.alloc(bytes), 0, bytes, 32 + (frame - 1) * FRAME);
    let lost = 0; // frames zeroed whole
    if (kind === 'group-first-header') zero(g.firstFrame, 24);
    else if (kind === 'group-last-header') zero(g.firstFrame + g.k - 1, 24);
    else if (kind === 'repairable-frames' || kind === 'whole-group') {
      lost = kind === 'whole-group' ? g.k : Math.min(2, g.k);
      for (let j = 0; j < lost; j++) zero(g.firstFrame + j, FRAME);
    } else {
      const junk = Buffer.from(Array.from({ length: FRAME }, () => rand(256)));
      fs.writeSync(fd, junk, 0, rand(2) === 0 ? 24 : FRAME, 32 + frames * FRAME);
    }
    fs.closeSync(fd);
    const r = await recoverWithRepair(copy);
    const what = `round ${round} (${killed ? 'killed writer, ' : ''}${kind}, group ${g.firstFrame}+${g.k}, ${frames} frames): ${JSON.stringify({ walFrames: r.walFrames, repaired: r.repairedFrames, fallback: r.fallback?.reason ?? null })}`;
    seen.add(`${kind}:${r.fallback?.reason ?? 'whole'}`);
    if (r.fallback === null && r.walFrames !== frames) wrong.push(`damage hidden as the end of the log: ${what}`);
    if (lost <= 2 && kind !== 'junk-past-end' && (r.walFrames !== frames || r.fallback !== null)) wrong.push(`repairable, not repaired whole: ${what}`);
    if (kind === 'junk-past-end' && r.fallback !== null && !(killed && r.fallback.reason === 'unprotected-tail')) wrong.push(`junk past the end reported: ${what}`);
  }
  expect(wrong).toEqual([]);
  expect(seen).toContain('whole-group:too-many-damaged'); // damage past repair came up, and was reported
});
