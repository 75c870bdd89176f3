// open(path, { readOnly: true }) and `walnut export --read-only` on files this user may not write
// (run as nobody through setpriv: test/helpers/as-nobody.ts; skipped with the reason where the
// tests do not run as root). walnut opens the database file, its -wal and -shm for reading and
// writing whatever read-only says (the -shm's locks; walnut has no read-only file access, a
// documented limit), so such a database cannot be opened; sqlite3 -readonly reads it. The core
// store's refusal told a caller who had asked for readOnly: true that "walnut writes every
// database it opens" (a database file of mode 0444: WALNUT_READONLY without a reason), or was
// WALNUT_CANTOPEN "open failed: Permission denied (<db>-shm)" (a -shm of another user's, mode
// 0444); walnut/sql's readOnly already said NotWritable (sql-read-only-unwritable). Now both are
// WALNUT_READONLY, reason NotWritable, errno EACCES, naming the file the OS refused and saying
// that read-only covers what walnut writes; `walnut export --read-only` says the same (exit 2).
// The files keep every byte and nothing is created beside them.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { asNobody, nobodySkip } from '../helpers/as-nobody';
import { spawnOutput } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const skip = nobodySkip();
if (skip !== null) console.warn(`store-read-only-unwritable: ${skip}`);

/** (searchable by nobody: mkdtemp makes 0700 directories) */
const root = tmpDir('walnut-store-read-only-unwritable-');
fs.chmodSync(root, 0o755);
const out = fs.mkdtempSync(path.join(root, 'out-'));
fs.chmodSync(out, 0o777);

const CHILD = path.join(__dirname, '..', 'helpers', 'store-read-only-open-child.js');

/** A WAL-mode database `name` with rows 'a', 'b' in a new directory of `mode`, the -wal and -shm gone (sqlite3 closed it). */
function database(name: string, dirMode: number): { dir: string; db: string } {
  const dir = fs.mkdtempSync(path.join(root, `${name}-`));
  const db = path.join(dir, `${name}.db`);
  execFileSync('sqlite3', [db, "PRAGMA journal_mode=WAL; CREATE TABLE t(v); INSERT INTO t VALUES ('a'), ('b')"]);
  fs.chmodSync(dir, dirMode);
  return { dir, db };
}

describe.skipIf(skip !== null)('read-only opens of files this user may not write', () => {
  it('open(readOnly) and export --read-only: WALNUT_READONLY, reason NotWritable, naming the file refused; nothing is written or created', async () => {
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
      const r = await spawnOutput('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, CHILD, db]);
      expect(r.status, r.stderr).toBe(0);
      const got = JSON.parse(r.stdout) as { code?: string; reason?: string; errno?: number; message?: string };
      expect(got, db).toMatchObject({ code: 'WALNUT_READONLY', reason: 'NotWritable', errno: os.constants.errno.EACCES });
      expect(got.message, db).toContain(`Permission denied (${refused})`);
      expect(got.message, db).toMatch(/readOnly: true writes nothing to the database, but walnut still opens/);
      expect(got.message, db).not.toMatch(/walnut writes every database it opens/);
      const ark = path.join(out, `${path.basename(db)}.ark`);
      const e = await asNobody('export', '--read-only', '--json', '-o', ark, db);
      expect(e.status, e.stderr).toBe(2);
      const error = (JSON.parse(e.stdout) as { error: { code: string; reason?: string; message: string } }).error;
      expect(error, db).toMatchObject({ code: 'WALNUT_READONLY', reason: 'NotWritable' });
      expect(error.message, db).toMatch(/a read-only export writes nothing to the database/);
      expect(fs.existsSync(ark)).toBe(false);
      expect(fs.readFileSync(db).equals(bytes), db).toBe(true);
      expect(fs.readdirSync(dir).sort(), db).toEqual(listed);
    }
  });
});
