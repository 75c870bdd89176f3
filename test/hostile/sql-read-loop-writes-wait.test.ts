// walnut/sql: a caller looping `await db.get()` on a read connection beside a writer. A read on a
// kept snapshot settles in microtasks alone, so such a loop runs a whole turn of the event loop
// until database.ts makes the next call wait for the next turn (TURN_MS, 10 ms). A write needs
// a turn or two (its batch's gathering, its fsync's completion): beside one read loop a lone
// writer went from 1,666 to 85 writes/s (~11 ms a write, reads 63,000/s either way). Now a read
// yields after READ_TURN_MS_WHILE_WRITING (1 ms) while a commit is in flight or a call waits for
// the writer: 1,700-2,050 writes/s beside the loop, reads 58,000-70,000/s (this machine, loaded).
//
// Asserted is the structure, not a rate: the reads done per turn of the event loop (a
// setImmediate ticker counts turns) while a writer loops, against those while nothing writes,
// in the same process. Before the fix both were a 10 ms turn's worth (ratio ~1; this test
// failed 3 of 3 runs); now the first is about a tenth of the second. Then every write is there.
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const median = (xs: number[]): number => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

test('a read loop gives a writer the event loop: reads per turn while writing are a fraction of those while idle', async () => {
  const db = await openDatabase(path.join(tmpDir(), 'read-loop.db'), { readConnections: 1 });
  try {
    await db.exec('CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)');
    for (let i = 0; i < 20; i++) await db.run('INSERT INTO t(v) VALUES (?)', [`row ${i}`]);

    // phases: the read loop warms up (its first turns run slower: compiling), then a writer loops
    // beside it, then the reads run alone again
    type Phase = 'warm' | 'writing' | 'idle' | 'done';
    let phase = 'warm' as Phase;
    let readsThisTurn = 0;
    const perTurn: Record<'warm' | 'writing' | 'idle', number[]> = { warm: [], writing: [], idle: [] };
    // a turn is counted when the ticker's setImmediate runs (check phase); the first turn of
    // each phase is left out (it began in the phase before)
    let turnPhase: Phase = phase;
    const ticker = (): void => {
      if (phase === 'done') return;
      if (turnPhase === phase) perTurn[phase].push(readsThisTurn);
      readsThisTurn = 0;
      turnPhase = phase;
      setImmediate(ticker);
    };
    setImmediate(ticker);
    const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

    let reads = 0;
    const reader = (async () => {
      while (phase !== 'done') {
        const row = await db.get('SELECT count(*) AS n FROM t');
        expect(Number(row!.n)).toBeGreaterThanOrEqual(20);
        reads++;
        readsThisTurn++;
      }
    })();

    await sleep(300);
    phase = 'writing';
    let writes = 0;
    const writer = (async () => {
      while (phase === 'writing') {
        await db.run('INSERT INTO t(v) VALUES (?)', [`write ${writes}`]);
        writes++;
      }
    })();
    await sleep(500);
    phase = 'idle';
    await writer;
    await sleep(300);
    phase = 'done';
    await reader;

    expect(perTurn.idle.length).toBeGreaterThan(5);
    expect(perTurn.writing.length).toBeGreaterThan(5);
    const idle = median(perTurn.idle);
    const writing = median(perTurn.writing);
    // reads make progress in both phases, and while a write waits a turn holds far fewer of them
    expect(idle).toBeGreaterThan(4);
    expect(writing, `median reads per turn: ${writing} while writing, ${idle} alone`).toBeLessThan(idle / 3);
    expect(reads).toBeGreaterThan(0);
    expect(writes).toBeGreaterThan(0);
    expect(Number((await db.get('SELECT count(*) AS n FROM t'))!.n)).toBe(20 + writes);
    expect((await db.get('PRAGMA integrity_check')) as Record<string, unknown>).toEqual({ integrity_check: 'ok' });
  } finally {
    await db.close();
  }
});
