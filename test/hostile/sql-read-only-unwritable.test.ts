// openDatabase(path, { readOnly: true }) on files this user may not write (run as nobody through
// setpriv: test/helpers/as-nobody.ts; skipped with the reason where the tests do not run as root).
// The store under walnut/sql opens the database file, its -wal and -shm for reading and writing
// whatever readOnly says (the -shm's locks; walnut has no read-only file access, a documented
// limit), so such a database cannot be opened; sqlite3 -readonly reads it. The refusal told a
// caller who had asked for read-only that "walnut writes every database it opens" (a database
// file of mode 0444: WALNUT_READONLY without a reason), or WALNUT_CANTOPEN "open failed:
// Permission denied (<db>-shm)" (a -shm of another user's, mode 0444). Now both are
// WALNUT_READONLY, reason NotWritable, errno EACCES, naming the file the OS refused and saying
// that readOnly covers SQL only; the files keep every byte and nothing is created beside them.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { nobodySkip } from '../helpers/as-nobody';
import { spawnOutput } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const skip = nobodySkip();
if (skip !== null) console.warn(`sql-read-only-unwritable: ${skip}`);

/** (searchable by nobody: mkdtemp makes 0700 directories) */
const root = tmpDir('walnut-sql-read-only-unwritable-');
fs.chmodSync(root, 0o755);

const CHILD = path.join(__dirname, '..', 'helpers', 'sql-read-only-open-child.js');

interface Opened {
  rows?: unknown[];
  code?: string;
  reason?: string;
  errno?: number;
  message?: string;
}

/** The child run as nobody on `db`: what openDatabase(db, { readOnly: true }) did. */
async function openAsNobody(db: string): Promise<Opened> {
  const r = await spawnOutput('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, CHILD, db]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Opened;
}

/** A WAL-mode database `name` with rows 'a', 'b' in a new directory of `mode`, the -wal and -shm gone (sqlite3 closed it). */
function database(name: string, dirMode: number): { dir: string; db: string } {
  const dir = fs.mkdtempSync(path.join(root, `${name}-`));
  const db = path.join(dir, `${name}.db`);
  execFileSync('sqlite3', [db, "PRAGMA journal_mode=WAL; CREATE TABLE t(v); INSERT INTO t VALUES ('a'), ('b')"]);
  fs.chmodSync(dir, dirMode);
  return { dir, db };
}

describe.skipIf(skip !== null)('openDatabase readOnly on files this user may not write', () => {
  it('is WALNUT_READONLY, reason NotWritable, naming the file refused and that readOnly covers SQL only; nothing is written or created', async () => {
    // the database file is the user's to read only (0444), in a directory the user cannot write
    const a = database('file-0444', 0o755);
    fs.chmodSync(a.db, 0o444);
    // the database file and directory writable, a -shm of another user's that it may only read
    const b = database('shm-0444', 0o777);
    fs.chmodSync(b.db, 0o666);
    fs.writeFileSync(`${b.db}-shm`, '');
    fs.chmodSync(`${b.db}-shm`, 0o444);
    for (const [{ dir, db }, refused] of [[a, a.db], [b, `${b.db}-shm`]] as const) {
      const listed = fs.readdirSync(dir).sort();
      const bytes = fs.readFileSync(db);
      const got = await openAsNobody(db);
      expect(got, db).toMatchObject({ code: 'WALNUT_READONLY', reason: 'NotWritable', errno: os.constants.errno.EACCES });
      expect(got.message, db).toContain(`Permission denied (${refused})`);
      expect(got.message, db).toMatch(/readOnly keeps SQL from writing/);
      expect(got.message, db).not.toMatch(/walnut writes every database it opens/);
      expect(fs.readFileSync(db).equals(bytes), db).toBe(true);
      expect(fs.readdirSync(dir).sort(), db).toEqual(listed);
    }
  }, 20_000);
});
