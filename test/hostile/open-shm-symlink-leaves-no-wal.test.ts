// An open refused because the -shm is a symbolic link (walnut never follows one at a file it
// opens) made the -wal first: `walnut checkpoint` and `walnut recover` on a database with no -wal
// and a dangling or looping link at its -shm failed WALNUT_CANTOPEN (reason Symlink) and left a
// new 0-byte -wal behind. The -wal such an open made goes again, as the -shm it made does (only
// under EXCLUSIVE on the database file, so no other connection uses it); one that was there stays.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { open } from '../../lib/index';
import { pythonSqlite, spawnOutput } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const walnut = path.resolve(__dirname, '../../bin/walnut.js');

async function database(name: string): Promise<string> {
  const db = path.join(tmpDir(), name);
  await pythonSqlite(db, "c.execute('PRAGMA journal_mode=WAL'); c.execute('CREATE TABLE t(x)'); c.execute('INSERT INTO t VALUES (1)')");
  expect(fs.existsSync(`${db}-wal`)).toBe(false); // python's last close removed both
  return db;
}

describe('an open refused at a symbolic link for the -shm', () => {
  it('open(): WALNUT_CANTOPEN Symlink, and no -wal left behind (dangling and looping links)', async () => {
    for (const target of ['/nonexistent/x', 'self']) {
      const db = await database(`a-${target === 'self' ? 'loop' : 'dangling'}.db`);
      fs.symlinkSync(target === 'self' ? `${db}-shm` : target, `${db}-shm`);
      await expect(open(db)).rejects.toMatchObject({ code: 'WALNUT_CANTOPEN', reason: 'Symlink' });
      expect(fs.existsSync(`${db}-wal`)).toBe(false);
      expect(fs.lstatSync(`${db}-shm`).isSymbolicLink()).toBe(true); // not ours: left as it was
    }
  });

  it('walnut checkpoint and recover: exit 2, no -wal left behind; a -wal that was there stays', async () => {
    const db = await database('b.db');
    fs.symlinkSync('/nonexistent/x', `${db}-shm`);
    for (const verb of ['checkpoint', 'recover']) {
      const r = await spawnOutput(process.execPath, [walnut, verb, db]);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/WALNUT_CANTOPEN/);
      expect(fs.existsSync(`${db}-wal`)).toBe(false);
    }
    // a -wal that was there before the open (a WAL with frames) is never removed
    const other = await database('c.db');
    const frames = await pythonSqlite(other, "c.execute('PRAGMA wal_autocheckpoint=0'); c.execute('INSERT INTO t VALUES (2)'); import shutil; shutil.copy(sys.argv[1] + '-wal', sys.argv[1] + '.keep')");
    expect(frames).toBe('');
    fs.copyFileSync(`${other}.keep`, `${other}-wal`);
    const before = fs.readFileSync(`${other}-wal`);
    expect(before.length).toBeGreaterThan(32);
    fs.symlinkSync('/nonexistent/x', `${other}-shm`);
    await expect(open(other)).rejects.toMatchObject({ code: 'WALNUT_CANTOPEN', reason: 'Symlink' });
    expect(fs.readFileSync(`${other}-wal`).equals(before)).toBe(true);
  });
});
