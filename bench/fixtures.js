// Shared bench fixtures: a SQLite-made base database and a large WAL written by walnut that
// rewrites its pages unchanged (valid for SQLite, so both systems can recover/checkpoint it).
'use strict';
const fs = require('node:fs');
const Database = require('better-sqlite3');
const { WalFile } = require('../dist/wal/wal-file.js');

/** A WAL-mode database (4 KiB pages) of `rows` 1000-byte rows, fully checkpointed. */
function baseDatabase(file, rows) {
  const db = new Database(file);
  db.pragma('page_size = 4096');
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(x BLOB)');
  const ins = db.prepare('INSERT INTO t VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) ins.run(Buffer.alloc(1000, i));
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close(); // the WAL is gone; the file holds everything
  const image = fs.readFileSync(file);
  return { image, pageCount: image.length / 4096 };
}

/**
 * Appends one-page transactions (page images unchanged) until the WAL holds `bytes`; the
 * frames cycle over the first `distinct` pages (default: all of them).
 */
async function largeWal(file, image, pageCount, bytes, distinct = pageCount) {
  const w = await WalFile.open(`${file}-wal`, { create: true });
  await w.writeHeader({ pageSize: 4096, checkpointSeq: 0, durability: 'none' });
  const frames = Math.floor((bytes - 32) / 4120);
  let batch = [];
  for (let f = 0; f < frames; f++) {
    const pgno = 1 + ((f * 7919) % distinct);
    batch.push({ pages: [{ pgno, data: image.subarray((pgno - 1) * 4096, pgno * 4096) }], dbSize: pageCount });
    if (batch.length === 1024 || f === frames - 1) {
      await w.append(batch);
      batch = [];
    }
  }
  await w.close();
  return frames;
}

module.exports = { baseDatabase, largeWal };
