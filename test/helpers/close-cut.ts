// What the tests of close() cutting waits share (test/hostile/close-cuts-write-waits,
// close-cuts-read-lock-waits, close-member-lane-cut): their calls wait for a lock another process
// holds, under a busy timeout long enough that a close() waiting it out cannot pass for a cut
// one; a cut close() settles within an honest, generous bound; each call's outcome as 'ok' or
// 'CODE/reason'.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import type { Store } from '../../lib/commit/store';

export const BUSY_TIMEOUT_MS = 20_000;
/** Generous: a loaded 2-core machine, and the close itself; a close that waits out the wait takes ~20 s. */
export const CLOSE_MS_AT_MOST = 2_000;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** How `p` settled: 'ok', or its error's code and reason ('WALNUT_CLOSED/WriteWaitCut'). */
export const outcome = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: { code?: string; reason?: string }) => `${e.code ?? String(e)}${e.reason ? `/${e.reason}` : ''}`);

/** The sqlite3 CLI's answer to `sql` on `file` (busy timeout 10 s). */
export const sqliteCli = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();

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

let databases = 0;

/** A new WAL database in `dir` with table t(w, v) (a python3 holder's INSERT goes there). */
export function newCutDatabase(dir: string): string {
  const file = path.join(dir, `cut${databases++}.db`);
  sqliteCli(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w, v)');
  return file;
}
