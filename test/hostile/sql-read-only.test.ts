// openDatabase(path, { readOnly: true }): walnut/sql had no read-only open, so nothing stopped a
// write through a database meant only to be read (a replica's: test/interop/sql-read-only-replica).
// Now the writer connection is opened SQLITE_OPEN_READONLY as the read connections are, and
// every statement that would write the database, through any verb (run, exec, get/all, a
// prepared statement, inside transaction() or a BEGIN sent through exec(), after PRAGMA
// query_only=0), fails WALNUT_READONLY, reason ReadOnlyDatabase, and writes nothing: the
// database file and its -wal keep every byte (sha256), sqlite3 reads the same rows, the WAL holds
// the same frames. Reads work on the writer and on read connections, transaction()s that only
// read work (a deferred BEGIN), TEMP tables take writes (they live in the connection's memory),
// and another connection's commits are seen. Option checks: a readOnly that is not a boolean,
// holdWriteLease with it, a missing file, a rollback-journal database (not converted). close()
// raced against refused writes: every call settles, no unhandled rejection.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { describe, expect, it } from 'vitest';

import { openDatabase, type Database } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { closeRaces, expectNoUnhandledRejections } from '../helpers/outcomes';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir('walnut-sql-read-only-');
let n = 0;

/**
 * A WAL-mode database with rows in its file and more in its -wal (walnut/sql wrote them and
 * closed with keepWal: the frames stay), an index, a view, a trigger and user_version 7.
 */
async function walDatabase(): Promise<string> {
  const file = path.join(dir, `ro${n++}.db`);
  const db = await openDatabase(file, { keepWal: true });
  await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX tv ON t(v); CREATE VIEW tview AS SELECT v FROM t; CREATE TABLE log(x); CREATE TRIGGER tt AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.v); END; PRAGMA user_version=7");
  for (let i = 0; i < 5; i++) await db.run('INSERT INTO t(v) VALUES (?)', [`row ${i}`]);
  await db.close();
  expect(fs.statSync(`${file}-wal`).size).toBeGreaterThan(32); // frames in the WAL
  return file;
}

/** The database file's and its -wal's bytes (sha256), and what sqlite3 reads: rows, schema, user_version, the WAL's frames. */
function state(file: string): { db: string; wal: string; rows: string } {
  const hash = (f: string): string => (fs.existsSync(f) ? createHash('sha256').update(fs.readFileSync(f)).digest('hex') : 'absent');
  const rows = execFileSync('sqlite3', ['-readonly', file, 'SELECT id, v FROM t ORDER BY id; SELECT x FROM log; SELECT sql FROM sqlite_schema ORDER BY name; PRAGMA user_version; PRAGMA integrity_check'], { encoding: 'utf8' });
  return { db: hash(file), wal: hash(`${file}-wal`), rows };
}

/** Every way a write reaches the writer, each expected to fail WALNUT_READONLY (reason ReadOnlyDatabase) and write nothing. */
const WRITES: [string, (db: Database) => Promise<unknown>][] = [
  ['run INSERT', (db) => db.run("INSERT INTO t(v) VALUES ('x')")],
  ['run UPDATE', (db) => db.run("UPDATE t SET v = 'y'")],
  ['run DELETE', (db) => db.run('DELETE FROM t')],
  ['exec CREATE TABLE', (db) => db.exec('CREATE TABLE u(a)')],
  ['exec CREATE INDEX', (db) => db.exec('CREATE INDEX ti ON t(id, v)')],
  ['exec DROP TABLE', (db) => db.exec('DROP TABLE t')],
  ['exec DROP VIEW', (db) => db.exec('DROP VIEW tview')],
  ['exec ALTER TABLE', (db) => db.exec('ALTER TABLE t ADD COLUMN w')],
  ['exec REINDEX', (db) => db.exec('REINDEX')],
  ['exec VACUUM', (db) => db.exec('VACUUM')],
  ['exec ANALYZE', (db) => db.exec('ANALYZE')],
  ['run PRAGMA user_version=N', (db) => db.run('PRAGMA user_version=99')],
  ['exec PRAGMA application_id=N', (db) => db.exec('PRAGMA application_id=5')],
  ['get INSERT RETURNING', (db) => db.get("INSERT INTO t(v) VALUES ('r') RETURNING id")],
  ['all DELETE RETURNING', (db) => db.all('DELETE FROM t RETURNING id')],
  ['all WITH ... INSERT', (db) => db.all("WITH s(v) AS (SELECT 'w') INSERT INTO t(v) SELECT v FROM s")],
  ['exec of two INSERTs', (db) => db.exec("INSERT INTO t(v) VALUES ('a'); INSERT INTO t(v) VALUES ('b')")],
  ['exec INSERT after PRAGMA query_only=0', (db) => db.exec("PRAGMA query_only=0; INSERT INTO t(v) VALUES ('q')")],
  ['prepared statement run', async (db) => (await db.prepare("INSERT INTO t(v) VALUES (?)")).run(['p'])],
  ['transaction() writing after a read', (db) => db.transaction(async (tx) => {
    expect(await tx.get('SELECT count(*) AS n FROM t')).toEqual({ n: 5 });
    await tx.run("INSERT INTO t(v) VALUES ('tx')");
  })],
  ['transaction() exec', (db) => db.transaction((tx) => tx.exec('DELETE FROM log'))],
  ['exec BEGIN ... INSERT ... COMMIT', (db) => db.exec("BEGIN; INSERT INTO t(v) VALUES ('b'); COMMIT")],
];

describe('openDatabase(path, { readOnly: true })', () => {
  for (const readConnections of [0, 2]) {
    it(`refuses every write, by every verb, WALNUT_READONLY (reason ReadOnlyDatabase), and writes nothing: the file and -wal keep every byte (readConnections ${readConnections})`, async () => {
      const file = await walDatabase();
      const before = state(file);
      const db = await openDatabase(file, { readOnly: true, readConnections });
      try {
        expect(db.readOnly).toBe(true);
        for (const [what, write] of WRITES) {
          const err = await expectRejectsWalnut(write(db), 'WALNUT_READONLY', { reason: 'ReadOnlyDatabase' });
          expect(err.message, what).toMatch(/opened read-only/);
          expect(err.path, what).toBe(db.path);
          // the connection is not left in a transaction: reads go on
          expect(await db.get('SELECT count(*) AS n FROM t'), what).toEqual({ n: 5 });
        }
        // a write inside a transaction the caller opened through exec(): refused, the transaction
        // stays the caller's (reads in it work), and its COMMIT commits nothing
        await db.exec('BEGIN');
        await expectRejectsWalnut(db.run("INSERT INTO t(v) VALUES ('in begin')"), 'WALNUT_READONLY', { reason: 'ReadOnlyDatabase' });
        expect(await db.get("SELECT count(*) AS n FROM t WHERE v = 'in begin'")).toEqual({ n: 0 });
        await db.exec('COMMIT');
        // BEGIN IMMEDIATE is taken (SQLite takes it as a deferred BEGIN on a read-only database); its writes are not
        await db.exec('BEGIN IMMEDIATE');
        await expectRejectsWalnut(db.exec("UPDATE t SET v = 'imm'"), 'WALNUT_READONLY', { reason: 'ReadOnlyDatabase' });
        await db.exec('ROLLBACK');
        expect(await db.get('PRAGMA user_version')).toEqual({ user_version: 7 });
        expect(await db.get('PRAGMA query_only')).toEqual({ query_only: 0 }); // (not what refuses: SQLite's read-only open is)
      } finally {
        await db.close();
      }
      expect(state(file)).toEqual(before);
    }, 20_000);
  }

  it('reads work on the writer and on read connections; a transaction() that only reads resolves; TEMP tables take writes (nothing of them reaches the file); another connection\'s commits are seen', async () => {
    const file = await walDatabase();
    const before = state(file);
    const db = await openDatabase(file, { readOnly: true });
    try {
      const rows = [0, 1, 2, 3, 4].map((i) => ({ id: i + 1, v: `row ${i}` }));
      expect(await db.all('SELECT id, v FROM t ORDER BY id')).toEqual(rows); // a read connection's
      expect(await db.all('SELECT v FROM tview ORDER BY v')).toEqual(rows.map(({ v }) => ({ v })));
      expect(await db.get('PRAGMA user_version')).toEqual({ user_version: 7 }); // the writer's
      expect(await db.get('PRAGMA journal_mode')).toEqual({ journal_mode: 'wal' });
      const stmt = await db.prepare('SELECT v FROM t WHERE id = ?');
      expect(await stmt.get([3])).toEqual({ v: 'row 2' });
      const read = await db.transaction(async (tx) => {
        const n = await tx.get('SELECT count(*) AS n FROM t');
        const last = await stmt.get([5]);
        return { n, last };
      });
      expect(read).toEqual({ n: { n: 5 }, last: { v: 'row 4' } });
      // nested in a transaction opened through exec(): a savepoint, reads only
      await db.exec('BEGIN');
      expect(await db.transaction((tx) => tx.all('SELECT id FROM t WHERE id > 3 ORDER BY id'))).toEqual([{ id: 4 }, { id: 5 }]);
      await db.exec('COMMIT');

      // TEMP: the connection's own, in memory: allowed
      await db.exec('CREATE TEMP TABLE scratch(a)');
      await db.run('INSERT INTO scratch SELECT id FROM t');
      expect(await db.transaction(async (tx) => {
        await tx.run('DELETE FROM scratch WHERE a > 2');
        return tx.all('SELECT a FROM scratch ORDER BY a');
      })).toEqual([{ a: 1 }, { a: 2 }]);
      expect(await db.get('SELECT count(*) AS n FROM temp.scratch')).toEqual({ n: 2 });
      await expectRejectsWalnut(db.run('INSERT INTO main.t(v) SELECT a FROM scratch'), 'WALNUT_READONLY', { reason: 'ReadOnlyDatabase' });
      expect(await db.get('SELECT last_insert_rowid() AS r')).toEqual({ r: 5 }); // TEMP's last row; the refused write changed nothing
      expect(state(file)).toEqual(before); // (nothing of TEMP's in the file or the -wal)

      // another connection writes: the read-only database sees its commit
      execFileSync('sqlite3', [file, "INSERT INTO t(v) VALUES ('sqlite3')"]);
      expect(await db.get('SELECT v FROM t WHERE id = 6')).toEqual({ v: 'sqlite3' });
      expect(await db.get('SELECT count(*) AS n FROM log')).toEqual({ n: 6 });
    } finally {
      await db.close();
    }
  }, 20_000);

  it('option checks: readOnly must be a boolean; holdWriteLease and the store options that write (keepWal false, autoCheckpoint, fec, convert, exclusive locking) are refused with it; a missing file is not created; a rollback-journal database is not converted', async () => {
    const file = await walDatabase();
    for (const value of ['yes', 1, 0, null, {}]) {
      const err = await expectRejectsWalnut(openDatabase(file, { readOnly: value as never }), 'WALNUT_INVALID_ARGUMENT', { reason: 'readOnly' });
      expect(err.message).toMatch(/readOnly must be a boolean/);
    }
    await expectRejectsWalnut(openDatabase(file, { readOnly: true, holdWriteLease: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'holdWriteLease' });
    // store options that write the files of their own accord or lock others out: refused, nothing made
    const before = fs.readdirSync(dir).sort();
    const bytesBefore = fs.readFileSync(file);
    for (const [name, value] of [['keepWal', false], ['autoCheckpoint', 1], ['autoCheckpoint', 0], ['fec', { repairSymbols: 2 }], ['convert', true], ['lockingMode', 'exclusive']] as const) {
      const err = await expectRejectsWalnut(openDatabase(file, { readOnly: true, [name]: value }), 'WALNUT_INVALID_ARGUMENT', { reason: name });
      expect(err.message).toMatch(/opened read-only/);
    }
    expect(fs.readdirSync(dir).sort()).toEqual(before);
    expect(fs.readFileSync(file).equals(bytesBefore)).toBe(true);
    // the harmless ones go
    await (await openDatabase(file, { readOnly: true, keepWal: true, autoCheckpoint: false, fec: false, convert: false, lockingMode: 'shared' })).close();
    const missing = path.join(dir, 'missing.db');
    await expectRejectsWalnut(openDatabase(missing, { readOnly: true }), 'WALNUT_CANTOPEN', { reason: 'NotFound' });
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('missing'))).toEqual([]);
    // what open() refuses is refused first, as without readOnly
    await expectRejectsWalnut(openDatabase(missing, { readOnly: true, busyTimeout: -1 }), 'WALNUT_INVALID_ARGUMENT', { reason: 'busyTimeout' });
    for (const bad of ['', `${missing}\0x`]) await expectRejectsWalnut(openDatabase(bad, { readOnly: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'path' });
    // an empty file (SQLite's empty database): not given a page 1 (that would be a write)
    const empty = path.join(dir, 'empty.db');
    fs.writeFileSync(empty, '');
    await expectRejectsWalnut(openDatabase(empty, { readOnly: true }), 'WALNUT_CANTOPEN');
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('empty'))).toEqual(['empty.db']);
    expect(fs.statSync(empty).size).toBe(0);
    // a database in rollback-journal mode: converting it to WAL would write its header
    const rollback = path.join(dir, 'rollback.db');
    execFileSync('sqlite3', [rollback, "CREATE TABLE t(v); INSERT INTO t VALUES ('r')"]);
    const bytes = fs.readFileSync(rollback);
    await expectRejectsWalnut(openDatabase(rollback, { readOnly: true }), 'WALNUT_CANTOPEN', { reason: 'NotWalMode' });
    expect(fs.readFileSync(rollback).equals(bytes)).toBe(true);
    // readOnly: false is the default's way on a database that is no replica's: writes go through
    const db = await openDatabase(file, { readOnly: false });
    expect(db.readOnly).toBe(false);
    await db.run("INSERT INTO t(v) VALUES ('written')");
    await db.close();
    expect(execFileSync('sqlite3', [file, "SELECT count(*) FROM t WHERE v = 'written'"], { encoding: 'utf8' }).trim()).toBe('1');
  }, 20_000);

  it('close() raced against refused writes: every call settles (WALNUT_READONLY, or WALNUT_CLOSED once close() began), close() resolves, nothing is written, no unhandled rejection', async () => {
    const file = await walDatabase();
    const before = state(file);
    const writes: [string, (db: Database) => Promise<unknown>][] = [
      ['run', (db) => db.run("INSERT INTO t(v) VALUES ('x')")],
      ['exec', (db) => db.exec("INSERT INTO t(v) VALUES ('x'); INSERT INTO t(v) VALUES ('y')")],
      ['get RETURNING', (db) => db.get("INSERT INTO t(v) VALUES ('x') RETURNING id")],
      ['transaction', (db) => db.transaction(async (tx) => {
        await tx.get('SELECT 1');
        await tx.run("INSERT INTO t(v) VALUES ('x')");
      })],
    ];
    let refused = 0;
    for (const [race, run] of closeRaces([0, 1])) {
      for (const [what, write] of writes) {
        const db = await openDatabase(file, { readOnly: true });
        const [outcome, closed] = await run(() => write(db), () => db.close());
        expect(closed, `${what}, ${race}`).toEqual({ ok: true, value: undefined });
        expect(outcome.ok, `${what}, ${race}`).toBe(false);
        if (outcome.ok) continue;
        expect(outcome.walnut, `${what}, ${race}: ${outcome.message}`).toBe(true);
        expect(['WALNUT_READONLY', 'WALNUT_CLOSED'], `${what}, ${race}: ${outcome.message}`).toContain(outcome.code);
        if (outcome.code === 'WALNUT_READONLY') refused++;
      }
    }
    expect(refused).toBeGreaterThan(0); // (some writes ran before close() refused them)
    expect(state(file)).toEqual(before);
  }, 30_000);
});
