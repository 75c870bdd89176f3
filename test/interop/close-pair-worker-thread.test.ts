// A walnut/sql database on a worker_thread and connections on the main thread to the same
// database, closed at the same moment: the last of them to close is the last connection and
// checkpoints and removes the -wal and -shm. The in-process close turn (WalIndex closeTurns) is
// each thread's own, so each closing connection saw the other thread's SHARED on the database
// file, neither took EXCLUSIVE, and the -wal and -shm stayed after every connection had closed
// (every round before the close turn lock, WalIndex CLOSE_TURN_BYTE). Afterwards sqlite3 finds
// the database whole with every row, and no lock is left.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

import { expect, it } from 'vitest';

import { open } from '../../lib';
import { openDatabase } from '../../lib/sql';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { expectSqliteUnlocked, sqliteIntegrity, sqliteRowCount } from '../helpers/sqlite-db';
import { newSrcDatabase } from '../helpers/src-rows';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir();
const HELPERS = path.join(__dirname, '..', 'helpers');
const ROUNDS = 4;
const companions = (db: string): string[] => ['-wal', '-shm'].filter((s) => fs.existsSync(db + s));

/** The worker's next message. */
const message = (w: Worker): Promise<string> => new Promise((resolve, reject) => {
  w.once('message', resolve);
  w.once('error', reject);
});

it('a worker_thread connection and two main-thread ones closed at once, in either order: the last removes the -wal and -shm, every row there', async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const db = path.join(dir, `worker-${round}.db`);
    await newSrcDatabase(db);
    const worker = new Worker(path.join(HELPERS, 'sql-close-worker.js'), { workerData: { db, rows: 200 } });
    try {
      expect(await message(worker)).toBe('ready');
      const d = await openDatabase(db);
      const store = await open(db);
      await d.exec("INSERT INTO t(src, i) VALUES ('main', 1)");
      const workerClosed = message(worker);
      const mainCloses = (): Promise<unknown> => Promise.all([d.close(), store.close()]);
      if (round % 2 === 0) {
        worker.postMessage('close');
        await mainCloses();
      } else {
        const closing = mainCloses();
        worker.postMessage('close');
        await closing;
      }
      expect(await workerClosed).toBe('closed');
    } finally {
      await worker.terminate();
    }
    expect(companions(db), `round ${round}`).toEqual([]);
    expect(sqliteIntegrity(db)).toEqual(['ok']);
    expect(sqliteRowCount(db, 't')).toBe(201);
    expectSqliteUnlocked(db);
  }
});
