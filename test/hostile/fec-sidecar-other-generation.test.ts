// Hostile: a -wal-fec left beside a new WAL by an earlier one. sqlite3 (or any SQLite) closing
// last checkpoints and removes the -wal and -shm but not the sidecar, which it does not know; a
// sidecar copied in with a database is the same. The sidecar writer took a group whose salt-1
// was "behind" the file's first group's as one of an older generation of this WAL (salt-1 grows
// by one per restart) and dropped it. A new WAL's salt-1 is random, so half the time every group
// was dropped (staleGroups counted them; no write error, no event), for as long as the store
// was open: the commits had no protection, and a damaged frame among them was lost with every
// commit after it. Now a group is dropped only when the WAL on disk has left its generation
// (another salts in the WAL header); one of the WAL's current generation replaces whatever
// generation the file holds.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { xxh3_128Into } from '../../lib/checksum';
import { open, recoverWithRepair } from '../../lib/index';
import { decodeGroupHeader } from '../../lib/fec/sidecar';
import { tmpDir } from '../helpers/tmp';
import { flipPageByte } from '../helpers/wal-damage';
import { until, WAIT_MS } from '../helpers/until';

const PS = 4096;
const page = (n: number) => Buffer.alloc(PS, n & 0xff);
type Store = Awaited<ReturnType<typeof open>>;
type Fec = { groups: number; staleGroups: number; writeErrors: number; queuedBytes: number };
const fecOf = (store: Store) => store.metrics().fec as Fec;

async function commitPages(store: Store, n: number, from: number): Promise<number> {
  let last = 0;
  for (let i = 0; i < n; i++) last = (await store.commit([{ pgno: 2, data: page(from + i) }], { dbSize: 2 })).lastFrame;
  return last;
}

/** python3's sqlite3 opens and closes the database: as the last connection it removes the -wal and -shm. */
function sqliteClosesLast(file: string): void {
  const r = spawnSync('python3', ['-c', 'import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.execute("SELECT count(*) FROM sqlite_schema").fetchall()\nc.close()', file], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
}

/** `bytes` (whole groups) with every group's salt-1 set to `salt1`, each group's hash made anew. */
function withSalt1(bytes: Buffer, salt1: number): Buffer {
  const out = Buffer.from(bytes);
  for (let at = 0; at < out.length; ) {
    const h = decodeGroupHeader(out.subarray(at));
    expect(h).not.toBeNull();
    out.writeUInt32LE(salt1, at + 16);
    xxh3_128Into(out, out, at + h!.length - 16, { offset: at, length: h!.length - 16 });
    at += h!.length;
  }
  return out;
}

describe('a sidecar left by an earlier WAL', () => {
  it('whose salt-1 is ahead of the new WAL\'s: the new generation\'s groups replace it, and repair a damaged frame', async () => {
    const file = path.join(tmpDir(), 'app.db');
    let store = await open(file, { pageSize: PS, fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true });
    await commitPages(store, 3, 0);
    await store.close();
    sqliteClosesLast(file);
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
    const leftover = fs.readFileSync(`${file}-wal-fec`);

    store = await open(file, { fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true });
    await commitPages(store, 1, 10); // the new WAL's header: its salts are random
    await until(() => fecOf(store).groups + fecOf(store).staleGroups === 1, WAIT_MS, () => fecOf(store));
    const salt1 = fs.readFileSync(`${file}-wal`).readUInt32BE(16);
    // the leftover as it is half the time: its salt-1 a step ahead (written through the same inode)
    fs.writeFileSync(`${file}-wal-fec`, withSalt1(leftover, (salt1 + 1) >>> 0));
    const last = await commitPages(store, 4, 20);
    await store.close();
    expect(fecOf(store)).toMatchObject({ staleGroups: 0, writeErrors: 0 }); // 4 stale before
    expect(fecOf(store).groups).toBeGreaterThanOrEqual(4);

    flipPageByte(`${file}-wal`, PS, last - 1);
    fs.rmSync(`${file}-shm`, { force: true });
    const r = await recoverWithRepair(file);
    expect(r.fallback).toBeNull();
    expect(r).toMatchObject({ walFrames: last, repairedFrames: 1 });
  });

  it('sqlite3 closing last, six times over: every commit of each new WAL gets its group', async () => {
    const file = path.join(tmpDir(), 'app.db');
    const seen: Fec[] = [];
    for (let round = 0; round < 6; round++) {
      const store = await open(file, { pageSize: PS, fec: { repairSymbols: 1 }, autoCheckpoint: false, keepWal: true });
      await commitPages(store, 3, round * 3);
      await store.close();
      seen.push(fecOf(store));
      sqliteClosesLast(file);
    }
    expect(seen.map((m) => [m.groups, m.staleGroups])).toEqual(seen.map(() => [3, 0])); // half the rounds [0, 3] before
  });
});
