// Frames of the WAL's current generation left past the last commit, unpublished, must stay
// invisible to recovery once a later append was written over their start. A writer killed
// between its write and its publish leaves them (here a walnut process SIGKILLed at its batch's
// fdatasync: T1, T2, T3 in the WAL, none acknowledged); the connection still open keeps the -shm
// valid, so nobody recovers them, and the next writer appends at the same slot. When that append
// is T1 again, byte for byte (a caller retrying what it was never told had committed), its frame
// carries the same salts and running checksum, so the killed writer's T2 and T3 continued its
// chain: after a crash, sqlite3's and walnut's recovery read their commit frames and brought back
// commits no live reader had ever seen. Every append now writes a zero frame header right after its
// last frame (wal-file.ts, native/frames.cc). Driven by dropped-tail-child.js (a holder, the
// killed writer and, in 'other', a retrying process that opens after the kill); checked on copies
// of the files left by the final SIGKILL: a walnut reopen and the sqlite3 CLI's recovery and
// TRUNCATE checkpoint.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { describe, expect, it } from 'vitest';

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

/** Byte 100 of pages `pgnos` of the database file `db` of `pageSize`-byte pages. */
function fileBytes(db: string, pgnos: number[], pageSize: number): number[] {
  const bytes = fs.readFileSync(db);
  return pgnos.map((pgno) => bytes[(pgno - 1) * pageSize + 100] ?? 0);
}

interface HolderOut {
  t0LastFrame: number;
  killed: string;
  killedFrames: number[];
  retry: string;
  afterRetry: number[];
  unhandled: string[];
}

describe("a killed writer's unpublished frames after a byte-identical retry of its first commit", () => {
  // 'self': the holder (the last publisher) retries: its append vouches for the slot and never
  // reads it; 'other': a process opened after the kill retries: its window, read from the index,
  // saw the killed writer's frame in the slot (a frame recovery would drop) and writes over it;
  // 16,400 frames: T0 fills four -shm segments (1 KiB pages), the retry and the dropped tail
  // lie in the fifth
  for (const [retrier, t0Pages] of [['self', 4], ['other', 4], ['self', 16_400]] as const) {
    it(`retried by ${retrier === 'self' ? 'the holder' : 'a new process'}${t0Pages > 16 ? `, after ${t0Pages} frames` : ''}: after a crash neither walnut's nor sqlite3's recovery finds T2 or T3`, async () => {
      const name = `${retrier}-${t0Pages}`;
      const db = path.join(dir, `${name}.db`);
      const pageSize = t0Pages <= 16 ? 4096 : 1024;
      const out = await runJsonChild<HolderOut>(path.join(HELPERS, 'dropped-tail-child.js'), ['holder', db, retrier, String(t0Pages)]);
      expect(out.unhandled).toEqual([]);
      expect(out.t0LastFrame).toBe(t0Pages);
      expect(out.killed).toBe('SIGKILL');
      expect(out.killedFrames).toEqual([2, 3, 4, 5]); // T1, T2, T3 (two pages) reached the WAL
      expect(out.retry).toBe('ok');
      expect(out.afterRetry).toEqual([2, 0]); // T1 again, then a zero frame header over T2's
      // acknowledged: T0 (pages 2..t0Pages+1 = 1), then T1's retry (page 2 = 2)
      const acknowledged = [2, 3, 4, 5].map((pgno) => ({ pgno, v: pgno === 2 ? 2 : 1 }));
      const bySqlite = copyOf(db, `${name}-sqlite3.db`);
      await expectAcknowledgedPages(copyOf(db, `${name}-walnut.db`), acknowledged, 2, 5);
      const r = await spawnOutput('sqlite3', [bySqlite, 'PRAGMA wal_checkpoint(TRUNCATE);']);
      expect(r.stdout.trim()).toBe('0|0|0'); // recovered, then everything was copied
      expect(fileBytes(bySqlite, [2, 3, 4, 5], pageSize)).toEqual([2, 1, 1, 1]);
    }, 30_000);
  }
});
