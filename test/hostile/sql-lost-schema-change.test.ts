// A walnut/sql schema change lost at its commit's durability (another connection committed
// after its snapshot: WALNUT_CONFLICT from the store's conditional commit, after the writer went
// on) must not stay in the writer's SQLite schema. SQLite reloads its schema only when the
// schema cookie it reads (page 1, offset 40) differs from the one it holds; a lost `CREATE TABLE`
// left it holding cookie C+1, and a sqlite3 process's own `CREATE TABLE` in between put C+1 on
// disk too: SQLite kept the lost table (and missed the other's), so the statement run again
// failed "table wN already exists" for a table no file holds (12-46 per 5 s run before the fix),
// and its next writes would have gone by a schema that is not the database's. Real parts: a
// better-sqlite3 process (test/helpers/sqlite-peer.js) creating tables while walnut/sql callers
// create tables and insert beside inserts that keep its pipeline full.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { SqlitePeer } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

function sqlite3(file: string, sql: string): string {
  return execFileSync('sqlite3', ['-cmd', '.timeout 5000', file, sql], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

test('tables created by walnut/sql and by a sqlite3 process at once: no statement fails on a table that only a lost commit created, walnut/sql\'s schema is the file\'s, every acknowledged row is in its own table', async () => {
  const file = path.join(tmpDir(), 'lost-schema.db');
  const db = await openDatabase(file);
  const peer = new SqlitePeer(file);
  const failed: { k: number; message: string }[] = [];
  const walnutRows: number[] = [];
  const peerRows: number[] = [];
  try {
    await db.exec('CREATE TABLE bg(id INTEGER PRIMARY KEY, x)');
    let stop = false;
    // inserts keep commits in flight, so another connection's commit lands between a statement's
    // run and its commit's durability (where the conflict comes after the writer went on); 1 ms
    // apart, or their commits back to back can keep the sqlite3 writer out (README)
    const background = Array.from({ length: 8 }, async (_, w) => {
      while (!stop) {
        await db.run('INSERT INTO bg(x) VALUES (?)', [w]);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    });
    const end = Date.now() + 4000;
    const walnut = (async () => {
      for (let k = 0; Date.now() < end; k++) {
        try {
          await db.run(`CREATE TABLE w${k}(a)`);
        } catch (e) {
          failed.push({ k, message: (e as Error).message });
          continue;
        }
        await db.run(`INSERT INTO w${k} VALUES (?)`, [k]);
        walnutRows.push(k);
      }
    })();
    const other = (async () => {
      for (let k = 0; Date.now() < end; k++) {
        try {
          await peer.exec(`CREATE TABLE p${k}(a, b); INSERT INTO p${k} VALUES (${k}, ${k})`);
          peerRows.push(k);
        } catch (e) {
          if ((e as { code?: string }).code !== 'SQLITE_BUSY') throw e; // walnut/sql's commits back to back can keep it out (README)
        }
      }
    })();
    await Promise.all([walnut, other]);
    stop = true;
    await Promise.all(background);
    expect(walnutRows.length).toBeGreaterThan(20);
    expect(peerRows.length).toBeGreaterThan(5);
    const walnutSchema = await db.transaction(async (tx) => (await tx.all("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")).map((r) => r['name']).join(','));
    await peer.close();
    await db.close();
    // every failure is true of the file (a table wN that exists there), none comes from a lost commit
    const tables = new Set(sqlite3(file, "SELECT name FROM sqlite_master WHERE type = 'table'").split('\n'));
    expect(failed.filter(({ k }) => !tables.has(`w${k}`))).toEqual([]);
    expect(walnutSchema).toBe(sqlite3(file, "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name)"));
    // one sqlite3 run: each table's rows on a line of their own
    const rows = (tables: number[], table: string, expr: string): string => tables.map((k) => `SELECT (SELECT group_concat(${expr}) FROM ${table}${k});`).join(' ');
    expect(sqlite3(file, rows(walnutRows, 'w', 'a')).split('\n')).toEqual(walnutRows.map(String));
    expect(sqlite3(file, rows(peerRows, 'p', "a || ':' || b")).split('\n')).toEqual(peerRows.map((k) => `${k}:${k}`));
    expect(sqlite3(file, 'PRAGMA integrity_check')).toBe('ok');
  } finally {
    if (db.open) await db.close().catch(() => undefined);
  }
});
