// Several walnut processes writing one database at scale, processes killed with SIGKILL among
// them: the concurrency family's case with a WAL past 16,000 frames (512-byte pages: 5 wal-index
// segments) and another process writing (python3's sqlite3, large-wal.ts startWalFiller, its
// own table). Three walnut/sql processes (test/crash/sql-crash-child.js, no auto-checkpoint: the
// WAL only grows) run two callers each, transactions of two rows and a counter; once the WAL is
// past 4,000 frames the first is SIGKILLed (wherever it is: holding WRITE mid-batch, between
// commits), a fourth is started in its place, and once python3 has filled the WAL the second is
// killed too. The others, python3 among them, go on past each kill (nothing of the dead holds
// them up). At the end: sqlite3's integrity_check is ok; every transaction any process
// acknowledged is there whole (both rows), none torn (no half without its pair), the counter
// equals the transactions there; every row python3 committed is there.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { readLines } from '../helpers/child-lines';
import { segmentEnd, shmMxFrame, startWalFiller } from '../helpers/large-wal';
import { walDatabase } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const CHILD = path.join(__dirname, '..', 'crash', 'sql-crash-child.js');

interface Writer {
  child: ChildProcess;
  acked: number[];
  ready: Promise<void>;
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function startWriter(db: string): Writer {
  const child = spawn(process.execPath, [CHILD, db, '2', 'off'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const acked: number[] = [];
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const ended = readLines(child, (line) => {
    if (line === 'ready') markReady();
    else if (line.startsWith('ack ')) acked.push(Number(line.split(' ')[2]));
    else throw new Error(`sql-crash-child: ${line}`);
  });
  return { child, acked, ready: Promise.race([ready, ended.then((r) => Promise.reject(new Error(`exited before ready: ${r.code} ${r.stderr}`)))]), ended };
}

async function kill(w: Writer): Promise<void> {
  w.child.kill('SIGKILL');
  const r = await w.ended;
  expect(r.signal, r.stderr).toBe('SIGKILL');
}

describe('walnut/sql processes SIGKILLed among others and a python3 writer, a WAL past 16,000 frames', () => {
  it('the others go on past each kill; integrity ok, every acknowledged transaction whole, none torn, the counter right, every python3 row there', async () => {
    const db = walDatabase(path.join(dir, 'app.db'), 512, 'CREATE TABLE t(g INTEGER, half TEXT, pad BLOB, PRIMARY KEY (g, half)); CREATE TABLE n(k INTEGER PRIMARY KEY, c INTEGER); INSERT INTO n VALUES (1, 0); CREATE TABLE u(id INTEGER PRIMARY KEY, v BLOB)');
    const writers = [startWriter(db), startWriter(db), startWriter(db)];
    const filler = startWalFiller(db, segmentEnd(3) + 300, 'u');
    const all = [...writers];
    try {
      await Promise.all(writers.map((w) => w.ready));
      await until(() => shmMxFrame(db) > 4000 && writers[0]!.acked.length > 0, WAIT_MS, () => [shmMxFrame(db), writers[0]!.acked.length]);
      await kill(writers[0]!);
      const fourth = startWriter(db);
      all.push(fourth);
      await fourth.ready;
      const afterFirst = writers.slice(1).map((w) => w.acked.length);
      await filler.filled;
      expect(shmMxFrame(db)).toBeGreaterThan(segmentEnd(3));
      await until(() => writers[1]!.acked.length > afterFirst[0]!, WAIT_MS, () => writers[1]!.acked.length);
      await kill(writers[1]!);
      const afterSecond = [writers[2]!, fourth].map((w) => w.acked.length);
      // those left go on committing, and so does python3 (it is still inserting: stop() not yet)
      await until(() => writers[2]!.acked.length > afterSecond[0]! + 5 && fourth.acked.length > afterSecond[1]! + 5, WAIT_MS, () => [writers[2]!.acked.length, fourth.acked.length]);
    } finally {
      filler.stop();
      for (const w of all) if (w.child.exitCode === null && w.child.signalCode === null) await kill(w);
    }
    const pythonRows = await filler.done;
    const acked = all.flatMap((w) => w.acked);
    expect(all.every((w) => w.acked.length > 0)).toBe(true);
    const check = spawnSync('python3', ['-c', `
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(json.dumps({
  'integrity': c.execute('PRAGMA integrity_check').fetchone()[0],
  'whole': [g for (g,) in c.execute("SELECT g FROM t GROUP BY g HAVING count(*) = 2")],
  'torn': c.execute("SELECT count(*) FROM (SELECT g FROM t GROUP BY g HAVING count(*) <> 2)").fetchone()[0],
  'counter': c.execute('SELECT c FROM n WHERE k = 1').fetchone()[0],
  'python': c.execute('SELECT count(*) FROM u').fetchone()[0],
}))
`, db], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
    const r = JSON.parse(check.stdout) as { integrity: string; whole: number[]; torn: number; counter: number; python: number };
    expect(r.integrity).toBe('ok');
    expect(r.torn).toBe(0);
    const there = new Set(r.whole);
    expect(acked.filter((g) => !there.has(g))).toEqual([]);
    expect(r.counter).toBe(r.whole.length);
    expect(r.python).toBe(pythonRows);
    console.log(`${acked.length} walnut transactions acknowledged by ${all.length} processes (${r.whole.length} there), ${pythonRows} python3 rows`);
  });
});
