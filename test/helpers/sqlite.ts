// Real SQLite for interop tests: better-sqlite3 writes databases and WALs that the tests then
// hand to walnut. Also an independent, plain-JS reading of the WAL format (reference/
// sqlite-wal.md sections 2-4) used as the oracle walnut is compared with.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';

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

/** Plain-JS SQLite WAL checksum (the serial loop of reference/sqlite-wal.md section 3). */
export function jsWalChecksum(data: Uint8Array, s0: number, s1: number, bigEndian: boolean): [number, number] {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i + 8 <= data.length; i += 8) {
    s0 = (s0 + dv.getUint32(i, !bigEndian) + s1) >>> 0;
    s1 = (s1 + dv.getUint32(i + 4, !bigEndian) + s0) >>> 0;
  }
  return [s0, s1];
}

export interface OracleFrame {
  index: number; // 1-based
  pgno: number;
  commitSize: number;
  offset: number; // file offset of the frame header
}

export interface OracleScan {
  pageSize: number;
  bigEndian: boolean;
  salts: [number, number];
  checkpointSeq: number;
  frames: OracleFrame[]; // every frame up to and including the last commit frame
  dbSize: number;
  commits: number;
  running: [number, number];
}

/** Independent recovery scan of a WAL image, written from the format description. */
export function oracleScan(wal: Buffer): OracleScan | null {
  if (wal.length < 32) return null;
  const magic = wal.readUInt32BE(0);
  if ((magic & 0xfffffffe) !== 0x377f0682) return null;
  const bigEndian = (magic & 1) === 1;
  const pageSize = wal.readUInt32BE(8);
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return null;
  const hc = jsWalChecksum(wal.subarray(0, 24), 0, 0, bigEndian);
  if (hc[0] !== wal.readUInt32BE(24) || hc[1] !== wal.readUInt32BE(28)) return null;
  if (wal.readUInt32BE(4) !== 3007000) throw new Error('CANTOPEN');
  const salts: [number, number] = [wal.readUInt32BE(16), wal.readUInt32BE(20)];
  let running = hc;
  const frames: OracleFrame[] = [];
  const result: OracleScan = { pageSize, bigEndian, salts, checkpointSeq: wal.readUInt32BE(12), frames: [], dbSize: 0, commits: 0, running: [0, 0] };
  const frameSize = pageSize + 24;
  for (let off = 32, i = 1; off + frameSize <= wal.length; off += frameSize, i++) {
    const pgno = wal.readUInt32BE(off);
    if (pgno === 0) break;
    if (wal.readUInt32BE(off + 8) !== salts[0] || wal.readUInt32BE(off + 12) !== salts[1]) break;
    let c = jsWalChecksum(wal.subarray(off, off + 8), running[0], running[1], bigEndian);
    c = jsWalChecksum(wal.subarray(off + 24, off + frameSize), c[0], c[1], bigEndian);
    if (c[0] !== wal.readUInt32BE(off + 16) || c[1] !== wal.readUInt32BE(off + 20)) break;
    running = c;
    const commitSize = wal.readUInt32BE(off + 4);
    frames.push({ index: i, pgno, commitSize, offset: off });
    if (commitSize !== 0) {
      result.frames = frames.slice();
      result.dbSize = commitSize;
      result.commits++;
      result.running = running;
    }
  }
  return result;
}
