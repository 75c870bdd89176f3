// Hostile: `walnut export app.db -o FILE --follow` into a FILE it created (no --force) held no
// lock on it (only a --force replacement's new file did), so nothing could tell that FILE was a
// live backup: a later `walnut export app.db -o FILE --force` truncated it in place (or renamed
// a new file over it) and `walnut restore other.ark FILE --force` renamed a database over it,
// each exit 0, while the follow went on writing into the unlinked (or cut) file: every commit
// after that lost to the backup. Now an export holds an OFD lock on byte 0 of the regular file
// it writes for as long as it writes it: both are refused (WALNUT_BUSY, reason InUse, exit 2),
// and the follow's FILE goes on holding every commit (restored: sqlite3 reads them all).
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { restore } from '../../lib/export/restore';
import { spawnOutput } from '../helpers/children';
import { commitRows } from '../helpers/python-rows';
import { newDatabaseStream } from '../helpers/new-database-stream';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);

/** How many rows of t a restore of what `file` holds now has (a probe of the follow's progress). */
async function rowsIn(file: string, probe: number): Promise<number> {
  const copy = path.join(dir, `probe-${probe}.db`);
  await restore(fs.createReadStream(file), copy);
  const d = new Database(copy, { readonly: true });
  try {
    return (d.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
  } finally {
    d.close();
  }
}

describe('walnut export --follow into a FILE it created', () => {
  it('is seen as live: export --force and restore --force over FILE are refused (WALNUT_BUSY InUse)', async () => {
    const ark = await newDatabaseStream(dir, false);
    const db = path.join(dir, 'app.db');
    commitRows(db, 20);
    const file = path.join(dir, 'app-follow.ark');
    const follow = spawn(process.execPath, [bin, 'export', db, '-o', file, '--follow'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let followErr = '';
    follow.stderr.on('data', (d) => (followErr += d));
    const followEnded = new Promise<NodeJS.Signals | null>((resolve) => follow.on('close', (_code, signal) => resolve(signal)));
    try {
      await until(() => fs.existsSync(file) && fs.statSync(file).size > 0);
      const [exported, restored] = await Promise.all([walnut('export', db, '-o', file, '--force'), walnut('restore', ark, file, '--force')]);
      expect(exported.stderr).toMatch(/WALNUT_BUSY.*another export is writing it/);
      expect(exported.status).toBe(2);
      expect(restored.stderr).toMatch(/WALNUT_BUSY.*an export is writing it/);
      expect(restored.status).toBe(2);

      // new commits reach FILE through the follow (waited for by restoring what FILE holds)
      commitRows(db, 5);
      for (let probe = 0; (await rowsIn(file, probe)) < 25; probe++) await new Promise((r) => setTimeout(r, 50));
    } finally {
      follow.kill('SIGTERM');
    }
    await followEnded;
    expect(followErr).not.toMatch(/WALNUT_/);
    const copy = path.join(dir, 'restored.db');
    const r = await walnut('restore', file, copy);
    expect(r.status, r.stderr).toBe(0);
    expect(execFileSync('sqlite3', [copy, 'SELECT count(*) FROM t; PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('25\nok');

    // the follow has ended: FILE is an ordinary file again, which --force replaces
    const again = await walnut('export', db, '-o', file, '--force');
    expect(again.status, again.stderr).toBe(0);
  }, 60_000);
});
