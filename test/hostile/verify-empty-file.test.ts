// A 0-byte database file is SQLite's empty database (sqlite3 opens it, integrity_check says ok,
// the first write creates page 1; walnut's open() does the same), yet `walnut verify` and
// `walnut inspect` refused it as "not a SQLite database" (exit 2). Now inspect reports it
// (pageSize 0: no header yet, dbPages 0, journal mode 'rollback', SQLite's default) and verify
// finds it sound. A -wal beside a 0-byte database is deleted unread by SQLite's first connection
// (pagerOpenWalIfPresent), commits and all: verify says so (wal-ignored) and inspect gives it no
// pages. Neither changes a file.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { inspect } from '../../lib/integrity/inspect';
import { verify } from '../../lib/integrity/verify';
import { sqliteWritesWal } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const CLI = path.join(__dirname, '..', '..', 'bin', 'walnut.js');
const cli = (...args: string[]) => JSON.parse(execFileSync(process.execPath, [CLI, ...args, '--json'], { encoding: 'utf8' }));
const files = (db: string) => fs.readdirSync(path.dirname(db)).filter((f) => f.startsWith(path.basename(db))).sort().map((f) => `${f}:${fs.statSync(path.join(dir, f)).size}`);

describe('verify and inspect of a 0-byte database file', () => {
  it('is SQLite\'s empty database: reported, sound, nothing changed', async () => {
    const db = path.join(dir, 'empty.db');
    fs.writeFileSync(db, '');
    expect(inspect(db)).toMatchObject({ pageSize: 0, walMode: false, journalMode: 'rollback', dbFilePages: 0, dbPages: 0, walFrames: 0, walHeaderStatus: 'missing' });
    for (const level of [1, 5]) expect(await verify(db, level)).toEqual({ ok: true, level, journalMode: 'rollback', pages: 0, issues: [] });
    expect(cli('verify', db)).toEqual({ ok: true, level: 5, journalMode: 'rollback', pages: 0, issues: [] }); // exit 0
    expect(cli('inspect', db)).toMatchObject({ pageSize: 0, dbPages: 0 });
    expect(files(db)).toEqual(['empty.db:0']);
    expect(execFileSync('sqlite3', [db, 'PRAGMA integrity_check'], { encoding: 'utf8' })).toBe('ok\n');
  });

  it('with a -wal of commits beside it: verify finds them ignored (SQLite deletes that -wal unread)', async () => {
    const db = sqliteWritesWal(dir, 'orphan', 4096, (s) => s.exec('CREATE TABLE t(v); INSERT INTO t VALUES (1)')).db;
    fs.writeFileSync(db, '');
    const r = inspect(db);
    expect(r).toMatchObject({ pageSize: 0, dbPages: 0, walHeaderStatus: 'ok' });
    expect(r.walFrames).toBeGreaterThan(0);
    const v = await verify(db, 5);
    expect(v).toMatchObject({ ok: false, pages: 0 });
    expect(v.issues.map((i) => i.kind)).toEqual(['wal-ignored']);
    expect(v.issues[0]!.message).toContain(`${r.commits} commits (${r.walFrames} frames)`);
    const walBytes = fs.statSync(`${db}-wal`).size;
    expect(files(db)).toEqual(['orphan.db:0', `orphan.db-wal:${walBytes}`]); // verify changed nothing
    expect(execFileSync('sqlite3', [db, 'PRAGMA page_count'], { encoding: 'utf8' })).toBe('0\n');
    expect(fs.existsSync(`${db}-wal`)).toBe(false); // what SQLite does with it
  });
});
