// Hostile: restore --force whose rename of the new file over the database fails: the database
// is a mount point (a bind-mounted file: rename is EBUSY there, as a full disk or a quota may
// fail it with ENOSPC/EDQUOT). restore() rejected with the OS's raw Error (no WalnutError, no
// code a caller can switch on). Now such a failure of a replacement step is a WalnutError
// (WALNUT_IO, or WALNUT_FULL for a full disk; reason 'replace', the errno and syscall, the
// original as its cause) saying the old database is as it was, and it is: sqlite3 reads every
// row of it, integrity ok, and nothing of the restore is left beside it.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { restore, WalnutError } from '../../lib';
import { newDatabaseStream } from '../helpers/new-database-stream';
import { MOUNT_SKIP } from '../helpers/small-fs';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('restore --force over a database whose rename fails', () => {
  it.skipIf(MOUNT_SKIP !== null)(`rejects WALNUT_IO (reason replace) and leaves the old database whole: a bind-mounted database${MOUNT_SKIP === null ? '' : ` (${MOUNT_SKIP})`}`, async () => {
    const ark = await newDatabaseStream(dir, false);

    // the old database, bind-mounted at app.db: 5 rows in the file, 20 commits only in its -wal
    const real = path.join(dir, 'real.db');
    const db = path.join(dir, 'app.db');
    fs.writeFileSync(db, '');
    execFileSync('python3', ['-c', `
import os, sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0')
c.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT)')
for i in range(5): c.execute("INSERT INTO t(who) VALUES ('old')")
c.close()
`, real]);
    execFileSync('mount', ['--bind', real, db]);
    try {
      execFileSync('python3', ['-c', `
import os, sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('PRAGMA wal_autocheckpoint=0')
for i in range(20): c.execute("INSERT INTO t(who) VALUES ('old')")
os._exit(0)
`, db]);
      const err = await restore(fs.createReadStream(ark), db, { force: true }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(WalnutError);
      expect((err as WalnutError).code).toBe('WALNUT_IO');
      expect((err as WalnutError).reason).toBe('replace');
      expect((err as WalnutError).message).toMatch(/EBUSY.*is as it was/);
      expect(execFileSync('sqlite3', [db, 'PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('ok');
      expect(execFileSync('sqlite3', [db, "SELECT who || ':' || count(*) FROM t GROUP BY who"], { encoding: 'utf8' }).trim()).toBe('old:25');
      expect(fs.readdirSync(dir).filter((n) => n.includes('.restore-'))).toEqual([]);
    } finally {
      execFileSync('umount', [db]);
    }
  }, 60_000);
});
