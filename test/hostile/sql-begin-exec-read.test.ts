// A read on the writer inside a transaction opened through exec('BEGIN') (its statements are
// separate calls: the transaction stays open as each call ends) answered at once with what it
// saw, also rows of another call's commit sequenced but not durable yet; a sqlite3 process
// committing first made that commit fail (WALNUT_CONFLICT), and the read had shown rows no file
// ever held (11 of 20 per run). A call's open transaction's view is now waited for at the call's
// end as a finished read transaction's is. Real parts: better-sqlite3 in its own process
// (test/helpers/sqlite-ticker.js) committing back to back.
// Since walnut/sql runs an autocommit statement whose commit was lost again (exec-progress.ts)
// and a lone commit is written as it is sequenced, the first version of this test (one constant
// row per round) no longer met a lost commit and passed without the fix. So each round now puts
// four other commits in flight first (the insert queues behind their batch, where the sqlite3
// commit can overtake it: db.conflictRetries counts those), and the row carries what its view
// saw of ext: a read that answered with the lost attempt's row shows a value the file never
// held (17 of ~60 rounds without the fix, none with it).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { startTicker } from '../helpers/ticker';
import { tmpDir } from '../helpers/tmp';

/** A subquery that computes for some milliseconds (a sqlite3 commit lands meanwhile). */
const SLOW = '(WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100000) SELECT count(*) FROM c)';

for (const readConnections of [0, 2]) {
  test(`a read inside exec('BEGIN') never answers with a commit that is then lost (readConnections ${readConnections})`, async (ctx) => {
    const file = path.join(tmpDir(), 'begin-read.db');
    const db = await openDatabase(file, { readConnections });
    const shown: { x: string; insert: string }[] = [];
    let reads = 0;
    try {
      await db.exec('CREATE TABLE ext(v); CREATE TABLE log(x); CREATE TABLE busy(v)');
      // 3 s of rounds, and on (up to 60 s) until an insert was overtaken: a loaded machine's
      // ticker may not get in for a while (one full run: none in 3 s)
      const stopFile = `${file}.stop-ticker`;
      const ticker = await startTicker(file, 60_000, stopFile);
      const [minEnd, hardEnd] = [Date.now() + 3000, Date.now() + 60_000];
      for (let k = 0; (k < 10 || Date.now() < minEnd || db.conflictRetries === 0) && Date.now() < hardEnd && !ticker.done; k++) {
        // made without awaiting, in this order: the insert's commit is in flight when the read runs,
        // queued behind a batch of others (an overtaken commit is run again, its row then says so)
        for (let j = 0; j < 4; j++) void db.exec(`INSERT INTO busy VALUES (${j})`).catch(() => undefined);
        const insert = db.exec(`INSERT INTO log SELECT 'a${k}:' || (SELECT max(rowid) FROM ext)`).then(() => 'ok', (e: Error & { code?: string }) => `${e.code}: ${e.message}`);
        const begin = db.exec('BEGIN').catch(() => undefined);
        // (changes(): a statement only the writer answers, also with read connections)
        const read = db.all(`SELECT x, changes() AS c, ${SLOW} AS n FROM log WHERE x LIKE ?`, [`a${k}:%`]).then((rows) => (rows.length > 0 ? String(rows[0].x) : null), () => null);
        const commit = db.exec('COMMIT').catch(() => undefined);
        await Promise.all([begin, commit]);
        const x = await read;
        if (x !== null) shown.push({ x, insert: await insert });
        reads++;
      }
      fs.writeFileSync(stopFile, '');
      const { code, stderr } = await ticker.exited;
      expect(code, stderr).toBe(0);
      // the sqlite3 process overtook some of the inserts, else nothing was tested: reported as
      // skipped, not passed (a loaded CI run met none in 60 s)
      if (db.conflictRetries === 0) {
        await db.close();
        ctx.skip();
      }
      await db.close();
    } finally {
      if (db.open) await db.close().catch(() => undefined);
    }
    const log = new Set(execFileSync('sqlite3', [file, 'SELECT x FROM log'], { encoding: 'utf8' }).split('\n'));
    // every row a read answered with is in the file, as it was shown (its insert was acknowledged)
    expect(shown.filter(({ x, insert }) => insert !== 'ok' || !log.has(x)).map(({ x, insert }) => `read showed ${x}; its insert: ${insert}`)).toEqual([]);
    expect(reads).toBeGreaterThan(5);
    expect(execFileSync('sqlite3', [file, 'PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('ok');
  });
}
