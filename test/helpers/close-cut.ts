// What the tests of close() cutting waits share (test/hostile/close-cuts-write-waits,
// close-cuts-read-lock-waits, close-cuts-replication-open, close-member-lane-cut): their calls wait
// for a lock another process holds, under a busy timeout long enough that a close() waiting it out
// cannot pass for a cut one; a cut close() settles within an honest, generous bound; each call's
// outcome as 'ok' or 'CODE/reason'; a torn wal-index header; nothing left held after the close.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'vitest';

import { open, type Store } from '../../lib/commit/store';
import { pythonSqlite } from './children';

export const BUSY_TIMEOUT_MS = 20_000;
/**
 * Half the busy timeout: a close that waits out the wait takes all of it (~20 s), a cut one
 * ~15-60 ms quiet. Not a speed bound (those are only behind WALNUT_SCALE): it was 2 s, which a
 * 2-core machine at load 12-19 (tests of a few seconds ran 8x slower) could pass by itself.
 */
export const CLOSE_MS_AT_MOST = BUSY_TIMEOUT_MS / 2;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** How `p` settled: 'ok', or its error's code and reason ('WALNUT_CLOSED/WriteWaitCut'). */
export const outcome = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: { code?: string; reason?: string }) => `${e.code ?? String(e)}${e.reason ? `/${e.reason}` : ''}`);

/** The sqlite3 CLI's answer to `sql` on `file` (busy timeout 10 s). */
export const sqliteCli = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();

/** Well into a wait before close() (its retries sleep up to 100 ms each). */
export const INTO_THE_WAIT_MS = 300;

/** Lets the waits go on (`intoTheWaitMs`), then closes (a store, a sql database) and checks that the close settled within CLOSE_MS_AT_MOST. */
export async function closeDuringTheWait(close: () => Promise<void>, intoTheWaitMs = INTO_THE_WAIT_MS): Promise<void> {
  await sleep(intoTheWaitMs);
  const t0 = performance.now();
  await close();
  const ms = performance.now() - t0;
  expect(ms, `close() took ${ms.toFixed(0)} ms`).toBeLessThan(CLOSE_MS_AT_MOST);
}

/** Where SQLite's user_version is in page 1 (PRAGMA user_version reads it): the tests' commits set it. */
export const USER_VERSION_OFFSET = 60;

/** Page 1 as `store` sees it now, with SQLite's user_version set to `v` (PRAGMA user_version reads it). */
export async function page1WithUserVersion(store: Store, v: number): Promise<Uint8Array> {
  const snap = await store.snapshot();
  try {
    const page = new Uint8Array(snap.readSync(1));
    new DataView(page.buffer).setUint32(USER_VERSION_OFFSET, v);
    return page;
  } finally {
    snap.release();
  }
}

/** Commits page 1 with SQLite's user_version set to `v`. */
export async function commitUserVersion(store: Store, v: number): Promise<void> {
  await store.commit([{ pgno: 1, data: await page1WithUserVersion(store, v) }]);
}

let databases = 0;

/** A new WAL database in `dir` with table t(w, v) (a python3 holder's INSERT goes there). */
export function newCutDatabase(dir: string): string {
  const file = path.join(dir, `cut${databases++}.db`);
  sqliteCli(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w, v)');
  return file;
}

/** A writer killed between the wal-index header's two copies: they differ, and no reader may trust them (only a connection holding WRITE may recover it). */
export function tearHeader(file: string): void {
  const fd = fs.openSync(`${file}-shm`, 'r+');
  try {
    const copy1 = Buffer.alloc(4);
    fs.readSync(fd, copy1, 0, 4, 48 + 16); // copy 1's mxFrame
    copy1.writeUInt32LE(copy1.readUInt32LE(0) + 1, 0);
    fs.writeSync(fd, copy1, 0, 4, 48 + 16);
  } finally {
    fs.closeSync(fd);
  }
}

/** Nothing left held: sqlite3 checkpoints the WAL whole (not busy) and takes WRITE at no wait; user_version is `v`; a fresh store reads and commits. */
export async function nothingHeld(file: string, v: number): Promise<void> {
  expect(sqliteCli(file, 'PRAGMA wal_checkpoint(TRUNCATE)')).toBe('0|0|0');
  expect(await pythonSqlite(file, "d = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\nd.execute('BEGIN IMMEDIATE'); d.execute('ROLLBACK'); print('ok')\nd.close()")).toBe('ok');
  expect(sqliteCli(file, 'PRAGMA user_version')).toBe(String(v));
  const fresh = await open(file, { busyTimeout: BUSY_TIMEOUT_MS, shareLane: false });
  try {
    await fresh.commit([{ pgno: 1, data: await page1WithUserVersion(fresh, v + 1) }]);
  } finally {
    await fresh.close();
  }
  expect(sqliteCli(file, 'PRAGMA user_version')).toBe(String(v + 1));
  expect(sqliteCli(file, 'PRAGMA integrity_check')).toBe('ok');
}
