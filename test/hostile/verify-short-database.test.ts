// walnut verify on a database file shorter than one page: a 65536-byte-page database cut to its
// first 4096 bytes (a copy cut short, a truncated download). verify reported "the database file
// is empty" for a file of 4096 bytes, sending its reader after the wrong problem; it now says
// how many bytes the file holds against the page size its header names (the finding's kind is
// still empty-database: no whole page, so no page SQLite can read).
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect, it } from 'vitest';

import { verify } from '../../lib/index';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

it('verify names the bytes a database file shorter than one page holds, not "empty"', async () => {
  const file = path.join(tmpDir(), 'short.db');
  const db = new Database(file);
  db.pragma('page_size = 65536');
  db.exec('CREATE TABLE t(x); INSERT INTO t VALUES (1)');
  db.close();
  expect(fs.statSync(file).size).toBe(2 * 65536);
  fs.truncateSync(file, 4096);
  const report = await verify(file, 1);
  expect(report.ok).toBe(false);
  expect(report.issues).toHaveLength(1);
  expect(report.issues[0]).toMatchObject({ kind: 'empty-database', pgno: 1 });
  expect(report.issues[0]!.message).toMatch(/4096 bytes/);
  expect(report.issues[0]!.message).toMatch(/65536/);
  // a 0-byte file is SQLite's empty database: sound
  fs.truncateSync(file, 0);
  expect(await verify(file, 1)).toMatchObject({ ok: true, pages: 0, issues: [] });
});
