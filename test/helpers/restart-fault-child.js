// A WAL restart meets an I/O fault (fault hook; started with WALNUT_FAULT_INJECTION=1): walnut/sql
// inserts rows, a checkpoint copies every frame, so the next commit restarts the WAL (its batch
// writes the new header, syncs it, then writes and syncs its frames: WalFile.appendAfterHeader);
// the fault is armed for that batch's header write or sync, or its frames' write or sync, and 12
// concurrent one-row INSERT transactions meet it (one per batch: the later ones are sequenced
// after the failing one). Prints one JSON line { acknowledged: [v...], errors: [...], after,
// walHeaderChanged, frame1Pgno, frame1OfHeader } for the parent to read the database with sqlite3.
'use strict';
const fs = require('node:fs');
const { openDatabase } = require('../../dist/sql.js');
const native = require('../../dist/native.js');

const [dbPath, scenario] = process.argv.slice(2);
// the restart batch's writes: 1 = the header, 2 = its frames; its syncs likewise
const FAULTS = {
  headerWriteEIO: { failWrite: { nth: 1, errno: 5 } },
  headerWriteENOSPC: { failWrite: { nth: 1, errno: 28 } },
  headerShortENOSPC: { shortWrite: { nth: 1, errno: 28 } },
  headerSyncEIO: { failSync: { nth: 1, errno: 5 } },
  framesWriteENOSPC: { failWrite: { nth: 2, errno: 28 } },
  framesShortENOSPC: { shortWrite: { nth: 2, errno: 28 } },
  framesSyncEIO: { failSync: { nth: 2, errno: 5 } },
};
const described = (e) => (e.reason ? `${e.code}/${e.reason}` : e.code) + (e.constructor.name === 'WalnutError' ? '' : ` (${e.constructor.name})`);

(async () => {
  const db = await openDatabase(dbPath, { autoCheckpoint: false, groupCommit: { maxBatchBytes: 4096 } });
  await db.exec('CREATE TABLE t(v INTEGER)');
  const out = { acknowledged: [], errors: [] };
  for (let v = 1; v <= 20; v++) {
    await db.run('INSERT INTO t VALUES (?)', [v]);
    out.acknowledged.push(v);
  }
  const c = await db.store.checkpoint('passive');
  if (c.checkpointedFrames !== c.walFrames) throw new Error('the checkpoint left frames: ' + JSON.stringify(c));
  const before = fs.readFileSync(dbPath + '-wal').subarray(0, 32);
  // the WAL as the failed batch left it, read when its commit's failure arrives (microtasks
  // after the batch failed: no later batch can have written yet); a transaction sent after the
  // pipeline recovered may restart the WAL anew before the others settle
  const walState = () => {
    const wal = fs.readFileSync(dbPath + '-wal');
    // frame1OfHeader: frame 1's salts are the header's (a frame of the WAL's generation, if its checksums hold)
    return { walHeaderChanged: !wal.subarray(0, 32).equals(before), frame1Pgno: wal.length >= 56 ? wal.readUInt32BE(32) : null, frame1OfHeader: wal.length >= 56 && wal.subarray(32 + 8, 32 + 16).equals(wal.subarray(16, 24)) };
  };
  let atFailure = null;
  native.TEST_setFaults(FAULTS[scenario]);
  // each a transaction(): an autocommit run() that a broken chain fails is run again by
  // walnut/sql (a conflict, README), and its commit would restart the WAL after the fault
  await Promise.all(
    Array.from({ length: 12 }, (_, k) =>
      db.transaction((tx) => tx.run('INSERT INTO t VALUES (?)', [100 + k])).then(
        () => out.acknowledged.push(100 + k),
        (e) => {
          atFailure ??= walState();
          out.errors.push(described(e));
        },
      ),
    ),
  );
  native.TEST_setFaults({ failWrite: null, shortWrite: null, failSync: null });
  Object.assign(out, atFailure ?? walState());
  out.after = await db.run('INSERT INTO t VALUES (999)').then(() => null, (e) => described(e));
  if (out.after === null) out.acknowledged.push(999);
  await db.close().catch((e) => (out.closeError = described(e)));
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch((e) => {
  process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n');
});
