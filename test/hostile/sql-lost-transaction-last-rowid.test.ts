// A transaction whose COMMIT walnut lost (another process's commit overtook it at durability:
// WALNUT_CONFLICT; one it was built on failed: ChainBroken) left the connection's
// last_insert_rowid() at the rowid its statements inserted, of rows that are not there. One
// caller, awaiting each call, retrying each on WALNUT_CONFLICT / WALNUT_BUSY:
//   await db.run('INSERT INTO p(k) VALUES (k)');
//   await db.transaction(async (tx) => { await tx.run('INSERT INTO ch(k, pid) VALUES (k, last_insert_rowid())'); .. });
// beside a python3 writer: the retry's first statement read the lost child's own rowid (k), and
// ch.pid pointed at the ch row itself, not at its parent. Now the rowid is set back to what it
// was before the transaction's BEGIN when its COMMIT is lost, while no statement ran on the
// connection since (database.ts #runTransaction, StatementRunner.restoreRowid). The rows are
// checked as test/helpers/lost-rowid-beside-writer.ts says, after each round of 1.5 s; rounds
// go on (at most MAX_ROUNDS) until a transaction was lost and retried: under load one may see none.
import { expect, test } from 'vitest';

import { CHILD, parentsAndChildrenBesideWriter, untilDone } from '../helpers/lost-rowid-beside-writer';

/** Rounds beside the writer (each a new database) at most, until a transaction was lost and retried (under load one round may see none). */
const MAX_ROUNDS = 5;

test("the caller's retry of a transaction whose COMMIT was lost reads the rowid of the statement before the transaction, not the lost one's", async () => {
  let retried = 0;
  for (let round = 0; round < MAX_ROUNDS && retried === 0; round++) {
    await parentsAndChildrenBesideWriter(`transaction-retry-${round}`, {}, async (db, k) => {
      await untilDone(() => db.run('INSERT INTO p(k) VALUES (?)', [k]), () => undefined);
      await untilDone(
        () =>
          db.transaction(async (tx) => {
            await tx.run(CHILD, [k]);
            // (a second statement after the insert: the rowid set back is the one before BEGIN, not before the last statement)
            await tx.run('UPDATE p SET k = k WHERE id = last_insert_rowid()');
          }),
        () => void retried++,
      );
    });
  }
  console.log(`transaction-retry: the caller retried a transaction ${retried} times`);
  expect(retried).toBeGreaterThan(0);
}, 30_000);
