// close() of walnut/sql beside a python3 sqlite3 writer (SQLite's own library, another process)
// on a WAL of 16,000+ frames (1 KiB pages: 4+ wal-index segments): the close family's case at
// scale. python3 fills the WAL in transactions of 100 rows beside walnut/sql's one-row commits
// (no checkpoint on either side), then goes on committing one row at a time:
//  - walnut closes first, while python3 commits: close() resolves, it is not the last
//    connection (python3's SHARED on the database file), so the -wal and -shm stay and nothing
//    is checkpointed under python3; python3 commits on after it, and its own close, the last,
//    checkpoints and removes the -wal;
//  - python3 closes first (its close is not the last: walnut has the database open, so the WAL
//    stays whole); walnut commits on, then its close() is the last connection's: it checkpoints
//    the 16,000+ frames and removes the -wal and -shm.
// Either way sqlite3 then finds every row both acknowledged, integrity ok, and no lock is left.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { readLines } from '../helpers/child-lines';
import { segmentEnd, shmMxFrame, untilWalMoves } from '../helpers/large-wal';
import { expectSqliteUnlocked, sqliteIntegrity, sqliteRowCount } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const TARGET = segmentEnd(3) + 200; // frames: past the 4th segment's end

// python3: 100-row transactions until the WAL holds TARGET frames ("filled N"), then one row per
// commit until STOP exists ("done N"), then its close (the last connection's checkpoint, or not)
const WRITER = `
import os, sqlite3, struct, sys, time
db, target, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = sqlite3.connect(db, timeout=60, isolation_level=None)
c.execute('PRAGMA wal_autocheckpoint=0')
c.execute('PRAGMA synchronous=NORMAL')
def mx_frame():  # the -shm header's mxFrame (the -wal's size counts walnut's zeros ahead of its frames)
    with open(db + '-shm', 'rb') as f:
        return struct.unpack('=I', f.read(20)[16:20])[0]
rows = 0
while mx_frame() < target:
    c.execute('BEGIN IMMEDIATE')
    c.executemany("INSERT INTO t(w, v) VALUES ('py', randomblob(900))", ((),) * 100)
    c.execute('COMMIT')
    rows += 100
    time.sleep(0.002)  # a turn for walnut's commits
print('filled', rows, flush=True)
while not os.path.exists(stop):
    c.execute("INSERT INTO t(w, v) VALUES ('py', randomblob(200))")
    rows += 1
    time.sleep(0.001)
print('done', rows, flush=True)
c.close()
`;

interface Writer {
  filled: Promise<void>;
  /** Resolves with python3's rows once it has closed its connection and exited. */
  done: Promise<number>;
  stop: () => void;
}

function startWriter(file: string): Writer {
  const stopFile = `${file}.stop`;
  const child = spawn('python3', ['-c', WRITER, file, String(TARGET), stopFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let rows = -1;
  let markFilled!: () => void;
  const filled = new Promise<void>((resolve) => (markFilled = resolve));
  const ended = readLines(child, (line) => {
    const [what, n] = line.split(' ');
    if (what === 'filled') markFilled();
    if (what === 'done') rows = Number(n);
  });
  const done = ended.then((r) => {
    if (r.code !== 0 || rows < 0) throw new Error(`python3 writer: exit ${r.code} ${r.signal ?? ''} ${r.stderr}`);
    return rows;
  });
  return { filled: Promise.race([filled, done.then(() => undefined)]), done, stop: () => fs.writeFileSync(stopFile, '') };
}

/** walnut/sql's one-row commits until `stop` resolves; how many were acknowledged. */
async function commitUntil(db: Awaited<ReturnType<typeof openDatabase>>, stop: Promise<unknown>): Promise<number> {
  let over = false;
  void stop.then(() => (over = true), () => (over = true));
  let acked = 0;
  while (!over) {
    await db.run("INSERT INTO t(w, v) VALUES ('walnut', randomblob(200))");
    acked++;
  }
  return acked;
}

async function filledBeside(file: string): Promise<{ db: Awaited<ReturnType<typeof openDatabase>>; writer: Writer; acked: number }> {
  const db = await openDatabase(file, { pageSize: 1024, autoCheckpoint: false });
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w TEXT, v BLOB)');
  const writer = startWriter(file);
  await untilWalMoves(file, shmMxFrame(file)); // python3 committed once: from now on both go on
  const acked = await commitUntil(db, writer.filled);
  expect(db.store.metrics().walFrames).toBeGreaterThan(segmentEnd(3));
  return { db, writer, acked };
}

function expectRows(file: string, walnut: number, python: number): void {
  expect(sqliteIntegrity(file)).toEqual(['ok']);
  expect(sqliteRowCount(file, 't', "w = 'walnut'")).toBe(walnut);
  expect(sqliteRowCount(file, 't', "w = 'py'")).toBe(python);
  expectSqliteUnlocked(file);
}

describe('walnut/sql closing beside a python3 writer on a WAL of 16,000+ frames', () => {
  it('walnut closes first while python3 commits: the -wal and -shm stay, python3 commits on; its close removes them; every row there', async () => {
    const file = path.join(dir, 'walnut-first.db');
    const { db, writer, acked } = await filledBeside(file);
    await db.close();
    expect(fs.existsSync(`${file}-wal`), 'the -wal (python3 still has it open)').toBe(true);
    expect(fs.existsSync(`${file}-shm`), 'the -shm (python3 still has it open)').toBe(true);
    const after = shmMxFrame(file);
    expect(after).toBeGreaterThan(segmentEnd(3)); // nothing checkpointed and restarted it under python3
    await until(() => shmMxFrame(file) > after + 10, WAIT_MS, () => shmMxFrame(file)); // python3 goes on committing
    writer.stop();
    const python = await writer.done;
    expect(fs.existsSync(`${file}-wal`), "python3's close, the last, removes the -wal").toBe(false);
    expectRows(file, acked, python);
  });

  it('python3 closes first: walnut commits on, and its close() (the last connection) checkpoints the 16,000+ frames and removes the -wal and -shm; every row there', async () => {
    const file = path.join(dir, 'python-first.db');
    const { db, writer, acked } = await filledBeside(file);
    writer.stop();
    let more = 0;
    try {
      const python = await writer.done;
      expect(fs.existsSync(`${file}-wal`), 'python3 was not the last connection').toBe(true);
      for (; more < 20; more++) await db.run("INSERT INTO t(w, v) VALUES ('walnut', randomblob(200))");
      expect(db.store.metrics().walFrames).toBeGreaterThan(segmentEnd(3));
      await db.close();
      expect(fs.existsSync(`${file}-wal`), 'the -wal, after the last close').toBe(false);
      expect(fs.existsSync(`${file}-shm`), 'the -shm, after the last close').toBe(false);
      expectRows(file, acked + more, python);
    } finally {
      await db.close();
    }
  });
});
