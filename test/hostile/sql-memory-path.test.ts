// openDatabase(':memory:') is refused (WALNUT_INVALID_ARGUMENT, reason path), and no file is
// made: it created a file named ":memory:" in the working directory, where better-sqlite3 (and
// SQLite) open a fresh in-memory database. Code moved from better-sqlite3 (tests use
// ':memory:' for a scratch database) found the previous run's tables and rows there ("table t
// already exists", stale counts). walnut/sql is a WAL on a file: give it a temporary file.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { afterEach, expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const cwd = process.cwd();
afterEach(() => process.chdir(cwd));

test("openDatabase(':memory:') is refused and creates no file", async () => {
  const dir = tmpDir();
  process.chdir(dir);
  await expectRejectsWalnut(openDatabase(':memory:'), 'WALNUT_INVALID_ARGUMENT', { reason: 'path' });
  await expectRejectsWalnut(openDatabase(':memory:', { readConnections: 0 }), 'WALNUT_INVALID_ARGUMENT', { reason: 'path' });
  expect(fs.readdirSync(dir)).toEqual([]);
  // a file whose name only begins so is a file like any other
  const db = await openDatabase(path.join(dir, ':memory:x.db'));
  await db.close();
  expect(fs.readdirSync(dir)).toContain(':memory:x.db');
});
