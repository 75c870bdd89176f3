// walnut/sql's reading of SQL text by SQLite's tokens (lib/sql/sql-text.ts) and exec()'s rule of
// which statements it may run again (exec-progress.ts mayAffectConnection): a word in a string,
// a comment, a quoted name, CASE ... END or a trigger's BEGIN ... END body is not a statement's
// keyword; transaction control, PRAGMA, ATTACH, DETACH as the leading keyword and the TEMP
// schema named (CREATE TEMP .., temp.x in any quoting SQLite takes) are. Each TEMP spelling
// here was checked to make a TEMP table with the sqlite3 CLI.
import { describe, expect, it } from 'vitest';

import { mayAffectConnection, readsConnectionState } from '../../lib/sql/exec-progress';
import { callsAny, leadingWords, mayNameTempSchema, namesAny, scanTokens } from '../../lib/sql/sql-text';

/** Every token of `sql`. */
function tokensOf(sql: string): { kind: string; value: string }[] {
  const tokens: { kind: string; value: string }[] = [];
  scanTokens(sql, (token) => (tokens.push(token), false));
  return tokens;
}

describe('scanTokens', () => {
  it('skips comments and whitespace, unquotes strings and names (a doubled quote is one), lower-cases', () => {
    const tokens = tokensOf(`-- BEGIN\nINSERT /* END */ INTO "a""b"(\`c\`\`d\`, [e"f]) VALUES ('it''s', x'0A', 1.5, $p)`);
    expect(tokens.map((t) => `${t.kind}:${t.value}`)).toEqual([
      'word:insert', 'word:into', 'name:a"b', 'other:(', 'name:c`d', 'other:,', 'name:e"f', 'other:)', 'word:values', 'other:(',
      "string:it's", 'other:,', 'word:x', 'string:0a', 'other:,', 'word:1', 'other:.', 'word:5', 'other:,', 'word:$p', 'other:)',
    ]);
  });

  it('stops when visit returns true', () => {
    const seen: string[] = [];
    expect(scanTokens('a b c', (t) => (seen.push(t.value), t.value === 'b'))).toBe(true);
    expect(seen).toEqual(['a', 'b']);
  });

  it('runs an unterminated string, name or comment to the end of the text', () => {
    expect(tokensOf("SELECT 'BEGIN").map((t) => t.kind)).toEqual(['word', 'string']);
    expect(tokensOf('SELECT "a').map((t) => t.value)).toEqual(['select', 'a']);
    expect(tokensOf('SELECT 1 /* COMMIT').map((t) => t.value)).toEqual(['select', '1']);
    expect(tokensOf('SELECT [a').map((t) => t.value)).toEqual(['select', 'a']);
  });
});

describe('leadingWords', () => {
  it('upper-cases the first words, skipping comments and empty statements, up to anything not a bare word', () => {
    expect(leadingWords(';; -- x\n/* y */ rollback to s', 3)).toEqual(['ROLLBACK', 'TO', 'S']);
    expect(leadingWords('SELECT "a" FROM t', 3)).toEqual(['SELECT']);
    expect(leadingWords("'BEGIN'", 1)).toEqual([]);
    expect(leadingWords('  ', 2)).toEqual([]);
  });
});

describe('mayNameTempSchema and namesAny', () => {
  it('TEMP after CREATE, temp before a dot in any quoting, a quoted name temp anywhere', () => {
    for (const sql of ['CREATE TEMP TABLE x(a)', 'create temporary view v as select 1', 'CREATE /* c */ TEMP TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END', 'CREATE TABLE temp.x(a)', 'CREATE TABLE temp . w(a)', 'CREATE TABLE "temp".y(a)', "CREATE TABLE 'temp'.x(a)", 'CREATE TABLE [TEMP].z(a)', 'INSERT INTO temp.x VALUES (1)', 'SELECT "temp" FROM t']) {
      expect(mayNameTempSchema(sql), sql).toBe(true);
    }
  });

  it('not a column, a string or a comment called temp, nor a longer word', () => {
    for (const sql of ['CREATE TABLE readings(temp REAL, temporary INT)', "INSERT INTO t VALUES ('temp'), ('a temporary file')", '-- temp.x\nSELECT 1', 'SELECT temp_c, tempt.x FROM tempt', 'INSERT INTO t(temp) VALUES (1)']) {
      expect(mayNameTempSchema(sql), sql).toBe(false);
    }
  });

  it('namesAny: a bare word, a quoted name or a string, never part of a word', () => {
    const names = new Set(['attach', 'case_sensitive_like']);
    expect(namesAny("ATTACH ':memory:' AS aux", names)).toBe(true);
    expect(namesAny("PRAGMA 'case_sensitive_like' = 1", names)).toBe(true);
    expect(namesAny('SELECT attached, case_sensitive_likes FROM t -- attach', names)).toBe(false);
  });
});

describe("mayAffectConnection: which of exec()'s statements are never run again", () => {
  it('a statement whose words are in strings, comments, names, CASE ... END or a trigger body may run again', () => {
    for (const sql of [
      'INSERT INTO t VALUES (1)',
      "INSERT INTO t VALUES ('BEGIN'), ('END'), ('COMMIT'), ('ROLLBACK'), ('temp'), ('PRAGMA x'), ('ATTACH')",
      'INSERT INTO t SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END FROM s',
      "UPDATE t SET end_at = 1, v = CASE v WHEN 'a' THEN 'b' END",
      '-- BEGIN\nINSERT INTO t VALUES (1)',
      '/* COMMIT; */ DELETE FROM t WHERE k = 1',
      'INSERT INTO "end"("begin", [commit], `release`) VALUES (1, 2, 3)',
      'CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.x); END',
      "WITH c(x) AS (SELECT 'rollback') INSERT INTO t SELECT x FROM c",
      'CREATE TABLE readings(temp REAL, end_at INT)',
      'EXPLAIN QUERY PLAN SELECT * FROM t WHERE x = 1',
    ]) {
      expect(mayAffectConnection(sql), sql).toBe(false);
    }
  });

  it('transaction control, PRAGMA, ATTACH, DETACH as the leading keyword, and TEMP objects, are never run again', () => {
    for (const sql of [
      'BEGIN',
      'begin immediate transaction',
      ' -- a comment\n COMMIT',
      'END TRANSACTION',
      'ROLLBACK',
      'ROLLBACK TO s',
      'SAVEPOINT s',
      'RELEASE SAVEPOINT s',
      'PRAGMA user_version = 7',
      "ATTACH DATABASE ':memory:' AS aux",
      'DETACH aux',
      'EXPLAIN BEGIN',
      'EXPLAIN QUERY PLAN PRAGMA table_info(t)',
      'CREATE TEMP TABLE x(a)',
      'CREATE TEMPORARY TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END',
      'INSERT INTO temp.x VALUES (1)',
      "CREATE TABLE 'temp'.x(a)",
    ]) {
      expect(mayAffectConnection(sql), sql).toBe(true);
    }
  });
});

describe('callsAny and readsConnectionState', () => {
  it('a call of last_insert_rowid(), changes() or total_changes() in any case, quoting or spacing', () => {
    for (const sql of ['INSERT INTO c(p) VALUES (last_insert_rowid())', 'SELECT Changes ( )', 'SELECT "total_changes"()', 'SELECT `changes`/* x */(', 'INSERT INTO log SELECT 1 WHERE [last_insert_rowid]() > 0']) {
      expect(readsConnectionState(sql), sql).toBe(true);
    }
  });
  it('not a column, a string, a comment or a longer name', () => {
    for (const sql of ['UPDATE t SET changes = changes + 1', "SELECT 'last_insert_rowid()'", 'SELECT 1 -- changes()', 'SELECT my_changes()', 'SELECT changes FROM t WHERE (1)', "SELECT 'changes'(1)"]) {
      expect(readsConnectionState(sql), sql).toBe(false);
    }
    expect(callsAny('SELECT f (1)', new Set(['f']))).toBe(true);
  });
});
