// The wal-index: after recovery walnut's -shm is byte-identical to the one SQLite builds for
// the same WAL; bad -shm files are rebuilt; snapshots see exactly their commits.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { WalIndex } from '../../lib/wal-index/wal-index';
import { Database, oracleScan, sqliteWritesWal } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

/** SQLite writes a WAL of at least `frames` frames (small transactions, no checkpoint). */
function walWithFrames(name: string, pageSize: number, frames: number) {
  return sqliteWritesWal(dir, name, pageSize, (db) => {
    db.pragma('synchronous = OFF');
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
    const ins = db.prepare('INSERT INTO t(v) VALUES (?)');
    const walFile = `${db.name}-wal`;
    let i = 0;
    while (!fs.existsSync(walFile) || fs.statSync(walFile).size < 32 + frames * (pageSize + 24)) {
      db.transaction(() => {
        for (let k = 0; k < 3; k++) ins.run(Buffer.alloc(40 + (i % 200), i & 0xff));
      })();
      i++;
    }
  });
}

function copyPair(src: { db: string; wal: string }, name: string): string {
  const target = path.join(dir, name);
  fs.copyFileSync(src.db, target);
  fs.copyFileSync(src.wal, `${target}-wal`);
  return target;
}

/** The -shm SQLite builds when it opens the database and runs its first query. */
function sqliteShm(dbPath: string): Buffer {
  const db = new Database(dbPath);
  try {
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return fs.readFileSync(`${dbPath}-shm`);
  } finally {
    db.close();
  }
}

describe('recovery builds the same -shm bytes as SQLite', () => {
  const cases: [number, number, number][] = [
    // [pageSize, frames, expected segments]
    [65536, 40, 1],
    [4096, 300, 1],
    [4096, 5000, 2],
    [1024, 9000, 3],
    [512, 16400, 5], // segment 4 starts after frame 16350
  ];
  for (const [pageSize, frames, segments] of cases) {
    it(`page size ${pageSize}, ${frames}+ frames (${segments} segment${segments > 1 ? 's' : ''})`, async () => {
      const src = walWithFrames(`shm${pageSize}-${frames}`, pageSize, frames);
      const theirs = sqliteShm(copyPair(src, `sq${pageSize}-${frames}.db`));
      const ours = copyPair(src, `wn${pageSize}-${frames}.db`);
      const index = await WalIndex.open(ours);
      try {
        const bytes = fs.readFileSync(`${ours}-shm`);
        expect(bytes.length).toBe(segments * 32768);
        expect(bytes.length).toBe(theirs.length);
        const scan = oracleScan(fs.readFileSync(src.wal))!;
        expect(bytes.readUInt32LE(16)).toBe(scan.frames.length);
        if (!bytes.equals(theirs)) {
          const first = bytes.findIndex((b, i) => b !== theirs[i]);
          throw new Error(`-shm differs first at byte ${first}: walnut ${bytes[first]} sqlite ${theirs[first]}`);
        }
      } finally {
        await index.close();
      }
    });
  }
});
