// exec() runs an autocommit text again from its first statement whose commit was lost (another
// process's commit overtook it), unless a statement from there may do what is the connection's
// (exec-progress.ts). Texts a reading of SQL text may misjudge, each beside a python3 writer
// committing in a tight loop, checked with sqlite3 (and the connection itself for its TEMP and
// attached tables) after: every row once (k a primary key; an upsert counter ck(k) = 1 shows a
// statement applied twice without an error), a main trigger's counter equal to the rows, the
// writer's rows all there, integrity ok.
//  - main-table texts that are run again: WITH ... INSERT/UPDATE, RETURNING, REPLACE, VALUES,
//    pragma_table_info(), ANALYZE, REINDEX, nested and unterminated comments, U+00A0/U+2028 in
//    strings and comments, words BEGIN/COMMIT/temp in strings, comments and CASE: every call
//    resolves (busyTimeout 5000);
//  - a connection whose TEMP table ck shadows main's ck (an unqualified INSERT goes to TEMP), a
//    TEMP trigger on a main table, an attached ':memory:' table written unqualified: such texts
//    are not run again; a TEMP/attached row at most once, once for a call that resolved;
//  - close() racing exec() calls: each settles with a WalnutError or resolves, nothing twice.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { isWalnutError, openDatabase, type Database } from '../../lib/sql';
import { HELPERS, startPython } from '../helpers/children';
import { execBesideWriter, type ExecCall } from '../helpers/exec-beside-writer';
import { shmMxFrame, untilWalMoves } from '../helpers/large-wal';
import { tmpDir } from '../helpers/tmp';

const sqlite3 = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();

/**
 * 6 callers' exec() of `texts` (by caller) for `ms` beside a python3 writer, on a database with
 * s (the rows), c (a counter), c2 (a main trigger's counter), ck (an upsert counter per call) and
 * what `setup` adds; then `check`, the writer's rows all there, integrity ok.
 */
async function beside(name: string, setup: (db: Database) => Promise<void>, texts: ((k: number) => string)[], ms: number, check: (db: Database, file: string, calls: ExecCall[]) => Promise<void>): Promise<void> {
  const file = path.join(tmpDir(), `${name}.db`);
  const db = await openDatabase(file, { readConnections: 0 });
  await db.exec('CREATE TABLE t(w, v); CREATE TABLE s(k INTEGER PRIMARY KEY, via TEXT NOT NULL, end_at INT); CREATE TABLE c(n INT); INSERT INTO c VALUES (0); CREATE TABLE c2(n INT); INSERT INTO c2 VALUES (0); CREATE TABLE ck(k INTEGER PRIMARY KEY, n INT)');
  await setup(db);
  const { calls, commits } = await execBesideWriter(db, file, 6, ms, (caller, k) => texts[caller % texts.length]!(k), 2);
  const rejected = calls.filter((c) => c.result !== 'ok');
  const kinds = new Map<string, number>();
  for (const r of rejected) kinds.set(r.result.slice(0, 60), (kinds.get(r.result.slice(0, 60)) ?? 0) + 1);
  console.log(`${name}: ${calls.length} calls, ${rejected.length} rejected ${JSON.stringify([...kinds])}, retries ${db.conflictRetries}, python3 commits ${commits}`);
  await check(db, file, calls);
  await db.close();
  expect(Number(sqlite3(file, 'SELECT count(*) FROM t'))).toBe(commits);
  expect(sqlite3(file, 'PRAGMA integrity_check')).toBe('ok');
}

/** How many times each k is in s (sqlite3's reading). */
function rowCounts(file: string, sql = 'SELECT k FROM s'): Map<number, number> {
  const counts = new Map<number, number>();
  for (const line of sqlite3(file, sql).split('\n')) if (line !== '') counts.set(Number(line), (counts.get(Number(line)) ?? 0) + 1);
  return counts;
}

/** ok calls: rows k and k+1 once, ck(k) n = 1; rejected ones a conflict and nothing twice; c2 (trigger) == rows; `strict`: none rejected. */
function consistent(strict: boolean, own = false) {
  return async (db: Database, file: string, calls: ExecCall[]): Promise<void> => {
    const rejected = calls.filter((c) => c.result !== 'ok');
    if (strict) expect(rejected.map((c) => `${c.k}: ${c.result}`)).toEqual([]);
    expect(rejected.filter((c) => !/^WALNUT_(CONFLICT|BUSY)\//.test(c.result)).map((c) => `${c.k}: ${c.result}`)).toEqual([]);
    const rows = rowCounts(file);
    const ck = own ? new Map((await db.all('SELECT k, n FROM ck')).map((r) => [Number(r.k), Number(r.n)])) : new Map(sqlite3(file, "SELECT k || ' ' || n FROM ck").split('\n').filter((l) => l !== '').map((l) => l.split(' ').map(Number) as [number, number]));
    const wrong: string[] = [];
    for (const { k, result } of calls) {
      const [a, b, n] = [rows.get(k) ?? 0, rows.get(k + 1) ?? 0, ck.get(k) ?? 0];
      if (result === 'ok' ? a !== 1 || b !== 1 || n !== 1 : a > 1 || b > 1 || n > 1) wrong.push(`${k} (${result.slice(0, 40)}): ${a}, ${b}, ck ${n}`);
    }
    expect(wrong).toEqual([]);
    const c = Number(sqlite3(file, 'SELECT n FROM c'));
    expect(c).toBeLessThanOrEqual(calls.length);
    expect(c).toBeGreaterThanOrEqual(calls.length - rejected.length);
    expect(Number(sqlite3(file, 'SELECT n FROM c2'))).toBe([...rows.values()].reduce((x, y) => x + y, 0));
  };
}

const TRIGGER = "CREATE TRIGGER s_count AFTER INSERT ON s BEGIN UPDATE c2 SET n = n + 1; SELECT CASE WHEN new.k < 0 THEN RAISE(ABORT, 'no; END') END; END";

const MAIN_TEXTS = [
  (k: number): string => `WITH x(v) AS (VALUES (${k}), (${k + 1})) INSERT INTO s(k, via) SELECT v, 'cte' FROM x; UPDATE c SET n = n + 1; INSERT INTO ck VALUES (${k}, 1) ON CONFLICT(k) DO UPDATE SET n = n + 1`,
  (k: number): string => `INSERT INTO s VALUES (${k}, 'ret', NULL) RETURNING k, 'end'; REPLACE INTO s VALUES (${k + 1}, 'rep\u00a0\u2028', NULL); --\u2028 BEGIN
 UPDATE c SET n = n + 1; INSERT INTO ck VALUES (${k}, 1) ON CONFLICT(k) DO UPDATE SET n = n + 1 -- COMMIT;`,
  (k: number): string => `SELECT * FROM pragma_table_info('s'); /* BEGIN /* nested? */ INSERT INTO s(k, via) VALUES (${k}, 'temp'); VALUES (1); UPDATE c SET n = n + 1; INSERT INTO ck VALUES (${k}, 1) ON CONFLICT(k) DO UPDATE SET n = n + 1; INSERT INTO [s](k, "via") VALUES (${k + 1}, 'x') /* unterminated COMMIT; BEGIN`,
  (k: number): string => `ANALYZE; INSERT INTO s(k, via) VALUES (${k}, 'a'); REINDEX; UPDATE c SET n = n + 1; INSERT INTO ck VALUES (${k}, 1) ON CONFLICT(k) DO UPDATE SET n = n + 1; INSERT INTO s(k, via) SELECT ${k + 1}, CASE WHEN 1 THEN 'temp' END; SELECT k AS temp FROM s LIMIT 0`,
  (k: number): string => `WITH d AS (SELECT ${k} AS v) INSERT INTO s(k, via) SELECT v, 'd' FROM d; WITH u AS (SELECT 1) UPDATE c SET n = n + 1 WHERE EXISTS (SELECT * FROM u); WITH v(x) AS (VALUES (${k})) INSERT INTO ck SELECT x, 1 FROM v WHERE true ON CONFLICT(k) DO UPDATE SET n = n + 1; INSERT INTO s(k, via, end_at) VALUES (${k + 1}, 'temp.x', 1); DELETE FROM s WHERE k < 0`,
];


test('main-table texts a reading of SQL text may misjudge are run again after a lost commit: all resolve, each row once', async () => {
  await beside('texts-main', (db) => db.exec(TRIGGER), MAIN_TEXTS, 1500, consistent(true));
}, 20_000);

test('a TEMP table shadowing a main one, a TEMP trigger on a main table, an attached :memory: table: their rows at most once, once per resolved call', async () => {
  const tlog = new Map<number, number>();
  const setup = `${TRIGGER}; CREATE TEMP TABLE ck(k INTEGER PRIMARY KEY, n INT); CREATE TEMP TABLE tlog(k); CREATE TEMP TRIGGER tt AFTER INSERT ON main.s BEGIN INSERT INTO tlog VALUES (new.k); END; ATTACH ':memory:' AS aux; CREATE TABLE aux.side(k)`;
  const texts = MAIN_TEXTS.map((text) => (k: number): string => `INSERT INTO side VALUES (${k}); ${text(k)}`); // (first: some texts end in a comment)
  await beside('texts-own', (db) => db.exec(setup), texts, 1500, async (db, file, calls) => {
    for (const r of await db.all('SELECT k FROM temp.tlog')) tlog.set(Number(r.k), (tlog.get(Number(r.k)) ?? 0) + 1);
    expect([...tlog].filter(([, n]) => n > 1)).toEqual([]);
    await consistent(false, true)(db, file, calls);
    // the TEMP trigger's row for every main row; the attached row at most once, once per resolved call
    expect([...rowCounts(file).keys()].filter((k) => tlog.get(k) !== 1)).toEqual([]);
    const side = new Map<number, number>();
    for (const r of await db.all('SELECT k FROM side')) side.set(Number(r.k), (side.get(Number(r.k)) ?? 0) + 1);
    expect(calls.filter(({ k, result }) => (side.get(k) ?? 0) > 1 || (result === 'ok' && side.get(k) !== 1))).toEqual([]);
    expect(sqlite3(file, 'SELECT count(*) FROM ck')).toBe('0');
  });
}, 20_000);

test('close() racing exec()', async () => {
  for (let round = 0; round < 3; round++) {
    const file = path.join(tmpDir(), `close-${round}.db`);
    const db = await openDatabase(file, { readConnections: 0 });
    await db.exec(`CREATE TABLE t(w, v); CREATE TABLE s(k INTEGER PRIMARY KEY, via TEXT NOT NULL, end_at INT); CREATE TABLE c(n INT); INSERT INTO c VALUES (0); CREATE TABLE c2(n INT); INSERT INTO c2 VALUES (0); CREATE TABLE ck(k INTEGER PRIMARY KEY, n INT); ${TRIGGER}`);
    const python = startPython(path.join(HELPERS, 'sqlite-writer.py'), [file, '30', '1', '0', '0', '0', '0', 'NORMAL']);
    await untilWalMoves(file, shmMxFrame(file));
    const calls: Promise<ExecCall>[] = [];
    for (let k = 0; k < 60; k += 2) calls.push(db.exec(MAIN_TEXTS[k % MAIN_TEXTS.length]!(k)).then(() => ({ k, result: 'ok' }), (e: unknown) => ({ k, result: isWalnutError(e) ? `${e.code}/${e.reason}` : `NOT WALNUT ${String(e)}` })));
    await new Promise((r) => setTimeout(r, 20 + round * 60));
    const closed = await db.close().then(() => 'closed', (e: unknown) => `close failed ${String(e)}`);
    const settled = await Promise.all(calls);
    python.stop();
    await python.output;
    const kinds = new Map<string, number>();
    for (const c of settled) kinds.set(c.result, (kinds.get(c.result) ?? 0) + 1);
    console.log(`close round ${round}: ${closed} ${JSON.stringify([...kinds])}`);
    expect(closed).toBe('closed');
    expect(settled.filter((c) => c.result.startsWith('NOT'))).toEqual([]);
    const rows = rowCounts(file);
    const ck = new Map(sqlite3(file, "SELECT k || ' ' || n FROM ck").split('\n').filter((l) => l !== '').map((l) => l.split(' ').map(Number) as [number, number]));
    const wrong: string[] = [];
    for (const { k, result } of settled) {
      const [a, b, n] = [rows.get(k) ?? 0, rows.get(k + 1) ?? 0, ck.get(k) ?? 0];
      if (result === 'ok' ? a !== 1 || b !== 1 || n !== 1 : a > 1 || b > 1 || n > 1) wrong.push(`${k} (${result}): ${a}, ${b}, ck ${n}`);
    }
    expect(wrong).toEqual([]);
    expect(Number(sqlite3(file, 'SELECT n FROM c2'))).toBe(rows.size);
    expect(sqlite3(file, 'PRAGMA integrity_check')).toBe('ok');
  }
}, 60_000);
