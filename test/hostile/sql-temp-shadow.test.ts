// A TEMP table of the writer connection that has the name of a main table shadows it (SQLite
// resolves an unqualified name in temp first). Queries were sent to read connections unless
// their text named TEMP: `SELECT v FROM t` answered from main's `t` with readConnections 2 and
// from the TEMP `t` with readConnections 0. Now once the writer ran SQL naming TEMP or
// TEMPORARY, every read runs on the writer: the answer is the same whatever readConnections is,
// and the one a single SQLite connection (better-sqlite3) gives.
import * as path from 'node:path';

import Database from 'better-sqlite3';
import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const SETUP = ["CREATE TABLE t(v)", "INSERT INTO t VALUES ('main')", "CREATE TABLE u(v)", "INSERT INTO u VALUES ('main u')"];

test.each([
  ['CREATE TEMP TABLE t(v)', "INSERT INTO temp.t VALUES ('temp')"],
  ['CREATE TEMPORARY TABLE t(v)', "INSERT INTO t VALUES ('temp')"],
  ["CREATE TEMP VIEW u AS SELECT 'temp view' AS v", null],
])('%s: get/all of the shadowed name answer as one SQLite connection does, whatever readConnections is', async (create, fill) => {
  const answers: unknown[] = [];
  for (const readConnections of [0, 2]) {
    const file = path.join(tmpDir(), `temp-shadow-${readConnections}.db`);
    const db = await openDatabase(file, { readConnections });
    try {
      for (const sql of SETUP) await db.run(sql);
      await db.run(create);
      if (fill !== null) await db.run(fill);
      // concurrently too: reads queued behind nothing, each may go to a read connection
      const rows = await Promise.all([db.get('SELECT v FROM t'), db.all('SELECT v FROM u'), db.get('SELECT count(*) AS n FROM t')]);
      answers.push(rows);
    } finally {
      await db.close();
    }
  }
  const native = new Database(':memory:');
  for (const sql of [...SETUP, create, ...(fill === null ? [] : [fill])]) native.exec(sql);
  const expected = [native.prepare('SELECT v FROM t').get(), native.prepare('SELECT v FROM u').all(), native.prepare('SELECT count(*) AS n FROM t').get()];
  native.close();
  expect(answers[0]).toEqual(expected);
  expect(answers[1]).toEqual(expected);
});
