// Databases SQLite builds for the integrity tests, and SQLite's own view of their pages (the
// dbstat virtual table and the freelist), so damage can be aimed at a page of a known role
// without using walnut's parser to find it.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'vitest';

import type { Store } from '../../lib/index';
import { Database } from './sqlite';

export interface BuildOptions {
  pageSize: number;
  autoVacuum?: 'none' | 'full' | 'incremental';
  rows?: number;
  encoding?: 'UTF-8' | 'UTF-16le' | 'UTF-16be';
  seed?: number;
}

/**
 * A WAL-mode database with a rowid table (overflow-sized rows), an index, a WITHOUT ROWID table
 * with its own index, NOCASE/RTRIM/DESC indexes (declared on the column and in the index, quoted
 * names), a view, a trigger, and a freelist left by deletes.
 * SQLite is closed when this returns: everything is in the database file.
 */
export function buildDatabase(dir: string, name: string, o: BuildOptions): string {
  const file = path.join(dir, `${name}.db`);
  for (const s of ['', '-wal', '-shm']) fs.rmSync(file + s, { force: true });
  const db = new Database(file);
  db.pragma(`page_size = ${o.pageSize}`);
  db.pragma(`auto_vacuum = ${o.autoVacuum ?? 'none'}`);
  if (o.encoding) db.pragma(`encoding = '${o.encoding}'`);
  db.pragma('journal_mode = WAL');
  db.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB);
    CREATE INDEX t_k ON t(k);
    CREATE TABLE w(k TEXT PRIMARY KEY, n INTEGER, r REAL) WITHOUT ROWID;
    CREATE INDEX w_n ON w(n, r);
    CREATE TABLE c(x TEXT COLLATE NOCASE, y INTEGER);
    CREATE INDEX c_x ON c(x DESC, y);
    CREATE TABLE "odd table"("Weird Col" TEXT COLLATE RTRIM, n INTEGER, s TEXT);
    CREATE INDEX od1 ON "odd table"("Weird Col", n DESC);
    CREATE INDEX od2 ON "odd table"(s COLLATE NOCASE, n DESC);
    CREATE VIEW tv AS SELECT id, k FROM t;
    CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN SELECT 1; END;`);
  const rows = o.rows ?? 400;
  let s = o.seed ?? 7;
  const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const ins = db.prepare('INSERT INTO t(k, v) VALUES (?, ?)');
  const insW = db.prepare('INSERT INTO w VALUES (?, ?, ?)');
  const insC = db.prepare('INSERT INTO c VALUES (?, ?)');
  const insO = db.prepare('INSERT INTO "odd table" VALUES (?, ?, ?)');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) {
      const big = i % 25 === 0;
      ins.run(`key-${Math.floor(rand() * 1e6)}`, Buffer.alloc(big ? o.pageSize * 3 + 17 : 10 + (i % 90), i & 0xff));
      insW.run(`w${i}-${'x'.repeat(i % 40)}`, i % 7 === 0 ? null : Math.floor(rand() * 1000) - 500, rand() * 10);
      insC.run(i % 2 ? `Name${i % 31}` : `name${i % 29}`, i);
      if (i % 3 === 0) insO.run(`v${i % 13}${' '.repeat(i % 4)}`, i % 5 === 0 ? null : (i * 37) % 101 - 50, i % 7 === 0 ? `ZZ${i}` : `zz${i % 11}`);
    }
  })();
  db.exec('DELETE FROM t WHERE id % 4 = 0; DELETE FROM w WHERE n > 300;');
  db.close();
  return file;
}

/** A WAL-mode database SQLite built at `file` (table t, one row), with nothing left in a -wal; returns `file`. */
export function oneRowWalDatabase(file: string, pageSize: number): string {
  const s = new Database(file);
  s.pragma(`page_size = ${pageSize}`);
  s.pragma('journal_mode = WAL');
  s.exec('CREATE TABLE t(x); INSERT INTO t VALUES (1)');
  s.close();
  return file;
}

/**
 * A WAL-mode database at `file` (4 KiB pages) whose table t holds one 16 KiB row: returns its
 * overflow pages' numbers (pages of a row's content, rewritable at will past their 4-byte link).
 */
export function overflowRowDatabase(file: string): number[] {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(v BLOB)');
  db.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(4 * 4096, 1));
  db.close();
  return pageRoles(file).pages.filter((p) => p.role === 'overflow').map((p) => p.pgno);
}

/** An overflow page of a row's blob and its link to the next page of its chain (its first 4 bytes: a commit that keeps them keeps the database valid). */
export interface OverflowPage {
  pgno: number;
  next: number;
}

/**
 * A WAL-mode database at `file` with `rows` rows of 4-page blobs in t(id, v, w) (w: the sqlite3
 * writers' column, sqlite-writer.py), row i's blob filled with byte i: its overflow pages (the
 * commit lane's tests rewrite them, many stores and threads at once).
 */
export function overflowChainDatabase(file: string, rows: number, pageSize = 4096): OverflowPage[] {
  const db = new Database(file);
  db.pragma(`page_size = ${pageSize}`);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB, w INTEGER)');
  const ins = db.prepare('INSERT INTO t(v) VALUES (?)');
  for (let i = 0; i < rows; i++) ins.run(Buffer.alloc(4 * pageSize, i));
  db.close();
  const bytes = fs.readFileSync(file);
  return pageRoles(file).pages.filter((p) => p.role === 'overflow').map((p) => ({ pgno: p.pgno, next: bytes.readUInt32BE((p.pgno - 1) * pageSize) }));
}

/** Overflow page `pgno` (overflowRowDatabase) as `store` reads it now, its content bytes set to `k` (the chain's 4-byte link kept). */
export async function stampPage(store: Store, pgno: number, k: number): Promise<Buffer> {
  const snap = await store.snapshot();
  try {
    return Buffer.from(await snap.read(pgno)).fill(k, 4);
  } finally {
    snap.release();
  }
}

export interface PageRole {
  pgno: number;
  /** 'schema', 'table', 'index' (b-tree pages), 'overflow', 'freelist-trunk', 'freelist-leaf', 'ptrmap' */
  role: string;
  /** 'internal' or 'leaf' for b-tree pages */
  kind?: string;
  tree?: string;
}

/** Every page of the database and what SQLite says it is. */
export function pageRoles(file: string): { pageSize: number; pages: PageRole[] } {
  const db = new Database(file, { readonly: true });
  try {
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const stat = db.prepare('SELECT s.name AS name, s.pageno AS pgno, s.pagetype AS type, m.type AS mtype FROM dbstat s LEFT JOIN sqlite_schema m ON m.name = s.name').all() as { name: string; pgno: number; type: string; mtype: string | null }[];
    const pages: PageRole[] = stat.map((r) => (r.type === 'overflow' ? { pgno: r.pgno, role: 'overflow', tree: r.name } : { pgno: r.pgno, role: r.name === 'sqlite_schema' ? 'schema' : r.mtype === 'index' || r.name.startsWith('sqlite_autoindex') ? 'index' : 'table', kind: r.type, tree: r.name }));
    const bytes = fs.readFileSync(file);
    let trunk = bytes.readUInt32BE(32);
    for (let guard = 0; trunk !== 0 && guard < 1e5; guard++) {
      pages.push({ pgno: trunk, role: 'freelist-trunk' });
      const at = (trunk - 1) * pageSize;
      const n = bytes.readUInt32BE(at + 4);
      for (let i = 0; i < n; i++) pages.push({ pgno: bytes.readUInt32BE(at + 8 + 4 * i), role: 'freelist-leaf' });
      trunk = bytes.readUInt32BE(at);
    }
    if (bytes.readUInt32BE(52) !== 0) {
      const per = Math.floor((pageSize - bytes[20]!) / 5) + 1;
      for (let p = 2; p <= bytes.length / pageSize; p += per) pages.push({ pgno: p, role: 'ptrmap' });
    }
    return { pageSize, pages: pages.sort((a, b) => a.pgno - b.pgno) };
  } finally {
    db.close();
  }
}

/** SQLite's PRAGMA integrity_check on `file`: ['ok'] or its messages (an error to open counts as a message). */
export function sqliteIntegrity(file: string): string[] {
  let db: InstanceType<typeof Database> | null = null;
  try {
    db = new Database(file);
    return (db.prepare('PRAGMA integrity_check').all() as { integrity_check: string }[]).map((r) => r.integrity_check);
  } catch (e) {
    return [`error: ${(e as Error).message}`];
  } finally {
    try {
      db?.close();
    } catch {
      // a corrupt database may refuse to checkpoint on close; the copy is thrown away anyway
    }
  }
}

/** Rows of `table` in `file`, counted by SQLite through a read-only connection (it leaves a -wal as it is, and may leave a -shm). */
export function sqliteRowCount(file: string, table: string, where = '1'): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table} WHERE ${where}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** No lock is left on `file`: a SQLite connection writes (2 s busy timeout), and its TRUNCATE checkpoint is not busy. */
export function expectSqliteUnlocked(file: string): void {
  const db = new Database(file, { timeout: 2000 });
  try {
    db.exec('CREATE TABLE IF NOT EXISTS lock_probe(x); INSERT INTO lock_probe VALUES (1)');
    expect((db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[])[0]!.busy, `${file}: a lock left`).toBe(0);
    db.exec('DROP TABLE lock_probe');
  } finally {
    db.close();
  }
}

/** Page `pgno`'s 4-byte next-page link (an overflowRowDatabase's chain), read through a snapshot released at once. */
export async function linkOf(store: Store, pgno: number): Promise<Buffer> {
  const snap = await store.snapshot();
  try {
    return Buffer.from((await snap.read(pgno)).subarray(0, 4));
  } finally {
    snap.release();
  }
}

/** A new WAL-mode database SQLite (better-sqlite3) makes at `file` with `pageSize` pages and the schema `sql`, closed again; returns `file`. */
export function walDatabase(file: string, pageSize: number, sql: string): string {
  const db = new Database(file);
  try {
    db.pragma(`page_size = ${pageSize}`);
    db.pragma('journal_mode = WAL');
    db.exec(sql);
  } finally {
    db.close();
  }
  return file;
}

/**
 * `read` (what sqlite3 reads of a database file) gives `expected` through the live -shm of
 * `file` and from a copy of the database and -wal that SQLite must recover (no -shm: the WAL's
 * checksum chain as written), with sqlite3's integrity_check ok on both.
 */
export function expectSameAfterRecovery(file: string, read: (file: string) => string, expected: string): void {
  const integrity = (f: string) => execFileSync('sqlite3', [f, 'PRAGMA integrity_check;'], { encoding: 'utf8' }).trim();
  expect(read(file)).toBe(expected);
  expect(integrity(file)).toBe('ok');
  const copy = `${file}.copy${Math.random().toString(16).slice(2)}.db`;
  fs.copyFileSync(file, copy);
  fs.copyFileSync(`${file}-wal`, `${copy}-wal`);
  expect(read(copy), 'after a recovery').toBe(expected);
  expect(integrity(copy), 'after a recovery').toBe('ok');
}
