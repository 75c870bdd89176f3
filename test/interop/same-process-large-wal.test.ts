// Same-process neighbours at scale: better-sqlite3 in THIS process holds a read transaction
// while a python3 sqlite3 process (another process, large-wal.ts startWalFiller) grows the WAL
// past 16,000 frames (512-byte pages: 5 wal-index segments) and walnut in this process commits
// (page 1's user_version, read-modify-write) and churns: stores opened (mapping every segment
// python3 made), snapshotted and closed, passive checkpoints, inspect, verify, exports. SQLite's
// POSIX locks belong to the process and all go when it closes any descriptor of the file
// (same-process.test.ts says why walnut parks its descriptors instead): with five segments
// mapped and unmapped, none of that may drop better-sqlite3's read mark. Checked from a third
// process: its TRUNCATE checkpoint stays busy while the read transaction is open (and is not once
// it ends), the read transaction's count never moves, and at the end sqlite3 finds every row
// python3 committed, walnut's count of commits in user_version, integrity ok.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { createExportStream } from '../../lib/export/stream';
import { inspect } from '../../lib/integrity/inspect';
import { verify } from '../../lib/integrity/verify';
import { commitsToUserVersion } from '../helpers/commit';
import { segmentEnd, shmMxFrame, startWalFiller } from '../helpers/large-wal';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

/** sqlite3 in another process, busy timeout 0. */
const sqlite3 = (file: string, sql: string) => spawnSync('sqlite3', [file, sql], { encoding: 'utf8' });

/** The busy column of another process's PRAGMA wal_checkpoint(TRUNCATE). */
function otherProcessTruncateBusy(file: string): number {
  const r = sqlite3(file, 'PRAGMA wal_checkpoint(TRUNCATE);');
  expect(r.status, r.stderr).toBe(0);
  return Number(r.stdout.trim().split('|')[0]);
}

async function drain(stream: NodeJS.ReadableStream): Promise<number> {
  let bytes = 0;
  for await (const chunk of stream) bytes += (chunk as Buffer).length;
  return bytes;
}

/** walnut work done in this process while better-sqlite3 holds its read mark. */
const churn: ((file: string) => Promise<unknown>)[] = [
  async (file) => {
    const store = await open(file, { keepWal: true });
    (await store.snapshot()).release();
    await store.close();
  },
  async (file) => {
    const store = await open(file, { keepWal: true });
    await store.checkpoint('passive');
    await store.close();
  },
  async (file) => inspect(file),
  async (file) => expect((await verify(file, 1)).ok).toBe(true),
  async (file) => expect(await drain(createExportStream(file))).toBeGreaterThan(0),
];

describe("better-sqlite3's read transaction in this process, a python3 writer growing the WAL past 16,000 frames, walnut committing and churning", () => {
  it("the read mark holds throughout (another process's TRUNCATE stays busy, the count never moves); every row there, integrity ok", async () => {
    const file = path.join(dir, 'app.db');
    const db = new Database(file, { timeout: 0 });
    db.pragma('page_size = 512');
    db.pragma('journal_mode = WAL');
    db.pragma('wal_autocheckpoint = 0');
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE u(id INTEGER PRIMARY KEY, v BLOB)');
    db.prepare("INSERT INTO t(v) VALUES ('before')").run();
    db.exec('BEGIN');
    const held = db.prepare('SELECT count(*) AS n FROM u').get();
    expect(held).toEqual({ n: 0 }); // a read mark from here on
    expect(otherProcessTruncateBusy(file)).toBe(1);

    const filler = startWalFiller(file, segmentEnd(3) + 300, 'u');
    let filled = false;
    void filler.filled.then(() => (filled = true));
    const store = await open(file, { keepWal: true, autoCheckpoint: false });
    let walnutAcked = 0;
    let churned = 0;
    const walnutLoop = commitsToUserVersion(store, () => filled).then((n) => (walnutAcked = n));
    const churnLoop = (async () => {
      while (!filled) await churn[churned++ % churn.length]!(file);
    })();
    try {
      await Promise.all([walnutLoop, churnLoop]);
      expect(shmMxFrame(file)).toBeGreaterThan(segmentEnd(3));
      expect(churned).toBeGreaterThan(churn.length);
      // the read transaction kept its mark through all of it
      expect(otherProcessTruncateBusy(file)).toBe(1);
      expect(db.prepare('SELECT count(*) AS n FROM u').get()).toEqual(held);
      expect(db.prepare('SELECT v FROM t').all()).toEqual([{ v: 'before' }]);
    } finally {
      filler.stop();
      db.exec('COMMIT');
    }
    const pythonRows = await filler.done;
    await store.close();
    expect(otherProcessTruncateBusy(file)).toBe(0);
    expect(db.prepare('SELECT count(*) AS n FROM u').get()).toEqual({ n: pythonRows });
    expect(db.pragma('user_version', { simple: true })).toBe(walnutAcked);
    db.close();
    const check = sqlite3(file, 'PRAGMA integrity_check; PRAGMA user_version; SELECT count(*) FROM u;');
    expect(check.stdout.trim().split('\n')).toEqual(['ok', String(walnutAcked), String(pythonRows)]);
  });
});
