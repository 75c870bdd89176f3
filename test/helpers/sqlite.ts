// Real SQLite for interop tests: better-sqlite3 writes databases and WALs that the tests then
// hand to walnut. Also an independent, plain-JS reading of the WAL format (reference/
// sqlite-wal.md sections 2-4) used as the oracle walnut is compared with.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';

import { jsWalChecksum } from './wal-oracle';

export { Database };

export interface SqliteWalCopy {
  db: string; // path of the copied database file
  wal: string; // path of the copied -wal
  pageSize: number;
}

/**
 * Creates a WAL database with SQLite, runs `work` (several transactions), and copies the
 * database and its -wal while the connection is still open (so nothing is checkpointed away).
 */
export function sqliteWritesWal(dir: string, name: string, pageSize: number, work: (db: Database.Database) => void): SqliteWalCopy {
  const src = path.join(dir, `${name}.src.db`);
  const db = new Database(src);
  db.pragma(`page_size = ${pageSize}`);
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE IF NOT EXISTS seed(x)'); // forces page 1 into the db file before WAL use
  db.pragma('wal_checkpoint(TRUNCATE)');
  work(db);
  const out = path.join(dir, `${name}.db`);
  fs.copyFileSync(src, out);
  fs.copyFileSync(`${src}-wal`, `${out}-wal`);
  db.close();
  return { db: out, wal: `${out}-wal`, pageSize };
}

/** A typical workload: a table with an index, inserts, updates and deletes over many commits. */
export function typicalWork(commits: number, seed = 1): (db: Database.Database) => void {
  return (db) => {
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB); CREATE INDEX t_k ON t(k)');
    const ins = db.prepare('INSERT INTO t(k, v) VALUES (?, ?)');
    const upd = db.prepare('UPDATE t SET v = ? WHERE id = ?');
    const del = db.prepare('DELETE FROM t WHERE id = ?');
    let x = seed;
    const rnd = () => (x = (x * 1103515245 + 12345) % 2147483648);
    for (let c = 0; c < commits; c++) {
      db.transaction(() => {
        for (let i = 0; i < 5; i++) ins.run(`key-${rnd()}`, Buffer.alloc(50 + (rnd() % 400), c & 0xff));
        if (c % 3 === 0) upd.run(Buffer.alloc(100, 7), 1 + (rnd() % (5 * (c + 1))));
        if (c % 5 === 4) del.run(1 + (rnd() % (5 * (c + 1))));
      })();
    }
  };
}

export { jsWalChecksum, oracleScan } from './wal-oracle';
export type { OracleFrame, OracleScan } from './wal-oracle';

/**
 * Changes page 1 in every WAL frame that holds it (or those `frames` picks, by 1-based frame
 * number) and signs the frames again (the checksum chain from the header on).
 */
export function rewritePage1InWal(walPath: string, change: (page: Buffer) => void, frames: (frame: number) => boolean = () => true): void {
  const wal = fs.readFileSync(walPath);
  const pageSize = wal.readUInt32BE(8);
  const bigEndian = (wal.readUInt32BE(0) & 1) === 1;
  let running: [number, number] = [wal.readUInt32BE(24), wal.readUInt32BE(28)];
  let changed = 0;
  for (let at = 32, frame = 1; at + 24 + pageSize <= wal.length; at += 24 + pageSize, frame++) {
    const page = wal.subarray(at + 24, at + 24 + pageSize);
    if (wal.readUInt32BE(at) === 1 && frames(frame)) {
      change(page);
      changed++;
    }
    running = jsWalChecksum(page, ...jsWalChecksum(wal.subarray(at, at + 8), running[0], running[1], bigEndian), bigEndian);
    wal.writeUInt32BE(running[0], at + 16);
    wal.writeUInt32BE(running[1], at + 20);
  }
  if (changed === 0) throw new Error(`no frame of page 1 in ${walPath}`);
  fs.writeFileSync(walPath, wal);
}
