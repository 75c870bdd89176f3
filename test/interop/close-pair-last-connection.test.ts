// Two walnut connections to one database in one process, closed at the same moment
// (Promise.all): the last of them to close is the last connection and does what SQLite's does
// (a checkpoint, then the -wal and -shm removed). OFD locks are each descriptor's own, so each
// closing connection saw the other's SHARED on the database file, neither took EXCLUSIVE, and
// both closed without the checkpoint: the -wal and -shm stayed after every connection had
// closed (every round of the first two cases before the fix). SQLite in one process closes the
// same way (python3: two connections, the second close removes the -wal). Now the closes of one
// file in a process take turns (WalIndex.closeAsLast). Cases: two walnut/sql databases and a
// store; a store and a walnut/sql database; and, so that the turns remove nothing another
// process still uses, both beside a sqlite3 connection in another process, which keeps the
// files until it closes itself. Afterwards sqlite3 finds the database whole with every row.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect, it } from 'vitest';

import { open, type Store } from '../../lib';
import { openDatabase } from '../../lib/sql';
import { SqlitePeer } from '../helpers/children';
import { insertSrcRowsSql, newSrcDatabase } from '../helpers/src-rows';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;
const ROUNDS = 5;

const sqlite3 = (db: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 5000', db, sql], { encoding: 'utf8' }).trim();
const companions = (db: string): string[] => ['-wal', '-shm'].filter((s) => fs.existsSync(db + s));

const newDatabase = (): Promise<string> => newSrcDatabase(path.join(dir, `pair-${n++}.db`));
const insertSql = insertSrcRowsSql;

it('two walnut/sql databases with commits of their own and an open() store, closed at once: the last closer checkpoints and removes the -wal and -shm, every row is there', async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const db = await newDatabase();
    const a = await openDatabase(db);
    const b = await openDatabase(db);
    await a.exec(insertSql('a', 100));
    await b.exec(insertSql('b', 100));
    const plain: Store = await open(db);
    await Promise.all([a.close(), plain.close(), b.close()]);
    expect(companions(db)).toEqual([]);
    expect(sqlite3(db, 'PRAGMA integrity_check')).toBe('ok');
    expect(sqlite3(db, "SELECT src || ':' || count(*) FROM t GROUP BY src ORDER BY src")).toBe('a:100\nb:100');
  }
});

it('a store and a walnut/sql database closed at once, in either order: the files go, nothing is lost', async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const db = await newDatabase();
    const store = await open(db, { autoCheckpoint: false });
    const d = await openDatabase(db, { autoCheckpoint: false });
    await d.exec(insertSql('sql', 500));
    // the store's own commit: page 1 (and its change counter) as the database has it now
    const snap = await store.snapshot();
    const page1 = Buffer.from(await snap.read(1));
    snap.release();
    await store.commit([{ pgno: 1, data: page1 }]);
    await (round % 2 === 0 ? Promise.all([store.close(), d.close()]) : Promise.all([d.close(), store.close()]));
    expect(companions(db)).toEqual([]);
    expect(sqlite3(db, 'PRAGMA integrity_check')).toBe('ok');
    expect(sqlite3(db, 'SELECT count(*) FROM t')).toBe('500');
  }
});

it('beside a sqlite3 connection in another process, two walnut closes at once keep the files; the sqlite3 connection, last, removes them', async () => {
  const db = await newDatabase();
  const peer = new SqlitePeer(db);
  try {
    await peer.exec(insertSql('peer', 50));
    const a = await openDatabase(db);
    const b = await open(db);
    await a.exec(insertSql('a', 50));
    await Promise.all([a.close(), b.close()]);
    expect(companions(db)).toEqual(['-wal', '-shm']); // the peer still uses them
    expect(await peer.get("SELECT count(*) AS n FROM t")).toEqual({ n: 100 });
  } finally {
    await peer.close();
  }
  expect(companions(db)).toEqual([]);
  expect(sqlite3(db, 'PRAGMA integrity_check')).toBe('ok');
  expect(sqlite3(db, 'SELECT count(*) FROM t')).toBe('100');
});
