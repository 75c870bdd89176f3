// inspect() and verify() read a -shm whole into memory: a -shm anyone grew (sparse, 10 GiB: a
// hostile or broken peer; nobody attached, so the next opener truncates it) failed both with
// WALNUT_IO and Node's RangeError text ("The value of "size" is out of range"), and a large one
// cost its size in memory. Now inspect reads the header only and verify the segments of the
// WAL's frames: here a sqlite3-written WAL of 16,500 frames (5 wal-index segments), its last
// segment's entries still checked (a damaged one is found), the rest of the file never read.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { inspect } from '../../lib/integrity/inspect';
import { verify } from '../../lib/integrity/verify';
import { segmentEnd } from '../helpers/large-wal';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A database sqlite3 wrote with a WAL of `frames`+ frames, its -wal and -shm kept as the live connection left them. */
function sqliteWal(name: string, frames: number): string {
  const db = path.join(dir, name);
  execFileSync('python3', ['-c', `
import sqlite3, shutil, sys
db = sys.argv[1]
c = sqlite3.connect(db, isolation_level=None)
c.execute('PRAGMA page_size=512'); c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0'); c.execute('PRAGMA synchronous=OFF')
c.execute('CREATE TABLE t(v)')
c.execute('BEGIN'); c.executemany('INSERT INTO t VALUES (randomblob(400))', [()] * int(sys.argv[2])); c.execute('COMMIT')
for s in ('-wal', '-shm'): shutil.copy(db + s, db + s + '.keep')
c.close()
for s in ('-wal', '-shm'): shutil.move(db + s + '.keep', db + s)
`, db, String(frames)]);
  return db;
}

describe('inspect and verify beside a large -shm', () => {
  it('read only what they need: a sparse 10 GiB -shm beside a 16,500-frame WAL (5 segments) is no error; a damaged entry in the last segment is still found', async () => {
    const db = sqliteWal('big.db', 16_500);
    const frames = inspect(db).walFrames;
    expect(frames).toBeGreaterThan(segmentEnd(3)); // 4+ segments
    fs.truncateSync(`${db}-shm`, 10 * 2 ** 30);
    const r = inspect(db);
    expect(r.shm).toMatchObject({ headerValid: true, mxFrame: frames });
    expect(await verify(db, 1)).toMatchObject({ ok: true, issues: [] });
    // a wrong page number for the last frame, in segment 4 (frame f's entry: see shm-check.ts)
    const seg = 4;
    const f = frames;
    const at = seg * 32768 + 4 * (f - segmentEnd(seg - 1) - 1);
    const fd = fs.openSync(`${db}-shm`, 'r+');
    const entry = Buffer.alloc(4);
    fs.readSync(fd, entry, 0, 4, at);
    const pgno = HOST_LE ? entry.readUInt32LE(0) : entry.readUInt32BE(0);
    expect(pgno).toBeGreaterThan(1); // it is the frame's entry
    if (HOST_LE) entry.writeUInt32LE(pgno + 1);
    else entry.writeUInt32BE(pgno + 1);
    fs.writeSync(fd, entry, 0, 4, at);
    fs.closeSync(fd);
    const damaged = await verify(db, 1);
    expect(damaged.issues).toEqual([expect.objectContaining({ kind: 'shm-index', frame: f })]);
  });
});
