// PRAGMA journal_mode through walnut/sql. SQLite in wasm runs in rollback mode with an in-memory
// journal on walnut's WAL (sql/walnut-vfs.ts), so it answered `PRAGMA journal_mode` with "memory"
// and `PRAGMA journal_mode=WAL` (an application's usual first statement, often checked) with
// "memory" too, for a database every other connection sees in WAL mode; and it took any other
// mode: "delete", "truncate", "persist" answered as if the database had left WAL mode (it had
// not: the file stayed WAL), and "off" dropped the writer's journal, so ROLLBACK TO a savepoint
// and a statement failing inside a transaction no longer undid anything: the rows a savepoint
// rolled back, and the half a failed INSERT ... SELECT had inserted, were committed. The mode is
// now WAL's: asking for it, or for WAL, answers "wal"; every other mode is refused
// (WALNUT_INVALID_ARGUMENT, reason journal_mode), and rollbacks keep working.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

describe('walnut/sql PRAGMA journal_mode', () => {
  for (const readConnections of [0, 2]) {
    it(`answers "wal" (asked, or set to WAL); other modes are refused and rollbacks still undo (readConnections ${readConnections})`, async () => {
      const file = path.join(tmpDir(), 'journal-mode.db');
      const db = await openDatabase(file, { readConnections });
      try {
        await db.exec('CREATE TABLE u(a UNIQUE)');
        expect(await db.get('PRAGMA journal_mode')).toEqual({ journal_mode: 'wal' });
        expect(await db.get('PRAGMA main.journal_mode')).toEqual({ journal_mode: 'wal' });
        expect(await db.get('PRAGMA journal_mode=WAL')).toEqual({ journal_mode: 'wal' });
        expect(await db.all("PRAGMA journal_mode = 'wal'")).toEqual([{ journal_mode: 'wal' }]);
        await db.exec('PRAGMA journal_mode=wal');
        for (const mode of ['DELETE', 'MEMORY', 'TRUNCATE', 'PERSIST', 'OFF']) {
          await expect(db.exec(`PRAGMA journal_mode=${mode}`), mode).rejects.toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'journal_mode' });
          await expect(db.get(`PRAGMA journal_mode = '${mode.toLowerCase()}'`), mode).rejects.toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'journal_mode' });
          await expect(db.run(`PRAGMA main.journal_mode=${mode}`), mode).rejects.toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'journal_mode' });
        }
        // the journal is still there: a savepoint rolled back, a failed statement inside a transaction
        await db.exec('BEGIN; INSERT INTO u VALUES (1); SAVEPOINT s; INSERT INTO u VALUES (2); ROLLBACK TO s; RELEASE s; COMMIT');
        await db.transaction(async (tx) => {
          await tx.run('INSERT INTO u VALUES (3)');
          await expect(tx.run("INSERT INTO u SELECT value FROM json_each('[4, 5, 5]')")).rejects.toMatchObject({ code: 'WALNUT_SQL', sqliteCode: 2067 }); // SQLITE_CONSTRAINT_UNIQUE
        });
        await expect(db.run("INSERT INTO u SELECT value FROM json_each('[6, 7, 7]')")).rejects.toMatchObject({ code: 'WALNUT_SQL', sqliteCode: 2067 }); // SQLITE_CONSTRAINT_UNIQUE
        expect(await db.all('SELECT a FROM u ORDER BY a')).toEqual([{ a: 1 }, { a: 3 }]);
        expect(await db.get('PRAGMA journal_mode')).toEqual({ journal_mode: 'wal' });
        const header = Buffer.alloc(20);
        const fd = fs.openSync(file, 'r');
        fs.readSync(fd, header, 0, 20, 0);
        fs.closeSync(fd);
        expect([header[18], header[19]]).toEqual([2, 2]);
        expect(execFileSync('sqlite3', [file, 'PRAGMA journal_mode; SELECT group_concat(a) FROM u'], { encoding: 'utf8' }).trim()).toBe('wal\n1,3');
        await db.close();
      } finally {
        if (db.open) await db.close().catch(() => undefined);
      }
      expect(execFileSync('sqlite3', [file, 'SELECT group_concat(a) FROM u; PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('1,3\nok');
    }, 60_000);
  }
});
