// Hostile: `walnut export app.db -o FILE --force` while `walnut export app.db -o FILE --follow
// --force` is writing FILE. The second export renamed its new file over FILE (or, where FILE
// cannot be renamed over, truncated it in place); the follow went on writing into the unlinked
// file, without an error: every commit after that was lost to the backup at FILE, which stayed
// the second export's snapshot. Now an export refuses a FILE a live export writes (its lock on
// byte 0, kept by a --force export's file for as long as it follows): WALNUT_BUSY, reason
// InUse, exit 2, and the follow's FILE goes on holding every commit (restored: sqlite3 reads
// them all). Through a symbolic link to FILE (or to its directory) the check did not look (it
// opened the name without following it) and export -o LINK --force replaced FILE, exit 0: now
// refused the same way.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { restore } from '../../lib/index';
import { spawnOutput } from '../helpers/children';
import { commitRows } from '../helpers/python-rows';
import { tmpDir } from '../helpers/tmp';
import { WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);

async function until(what: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; !what(); ) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

let probes = 0;
/** The rows of t in what FILE holds now, restored to a scratch database (-1 while it does not restore: a record half written). */
async function rowsIn(file: string): Promise<number> {
  const scratch = path.join(dir, `probe-${probes++}.db`);
  try {
    await restore(fs.readFileSync(file), scratch);
    return Number(execFileSync('sqlite3', [scratch, 'SELECT count(*) FROM t'], { encoding: 'utf8' }).trim());
  } catch {
    return -1;
  }
}

/**
 * `walnut export DB -o FILE --follow ...followArgs` (DB holding 20 rows) running: once `started`,
 * `during()`; then 5 more commits, which must reach FILE through the follow: ended by SIGTERM
 * without an error, FILE restores all 25 rows (sqlite3, integrity ok).
 */
async function whileFollowing(db: string, file: string, followArgs: string[], started: () => boolean, during: () => Promise<void>): Promise<void> {
  const follow = spawn(process.execPath, [bin, 'export', db, '-o', file, '--follow', ...followArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
  let followErr = '';
  follow.stderr.on('data', (d) => (followErr += d));
  const followEnded = new Promise<NodeJS.Signals | null>((resolve) => follow.on('close', (_code, signal) => resolve(signal)));
  try {
    expect(await until(started, 20_000)).toBe(true);
    await during();
    // new commits reach FILE through the follow
    const before = fs.statSync(file).size;
    commitRows(db, 5);
    await until(() => fs.statSync(file).size > before, 10_000);
    // the 5 rows are 5 commits: the follow may have carried only some of them at the first growth,
    // so wait until FILE holds them all (waiting until it stopped growing for 4 x 250 ms was a
    // speed check: a loaded machine's follow may pause longer than that between its passes)
    for (const end = Date.now() + WAIT_MS; (await rowsIn(file)) !== 25 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 100));
  } finally {
    follow.kill('SIGTERM');
  }
  await followEnded;
  expect(followErr).not.toMatch(/WALNUT_/);
  const restored = `${file}.restored.db`;
  const r = await walnut('restore', file, restored);
  expect(r.status, r.stderr).toBe(0);
  expect(execFileSync('sqlite3', [restored, 'SELECT count(*) FROM t; PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('25\nok');
}

describe('walnut export --force over a FILE a --follow export is writing', () => {
  it('is refused (WALNUT_BUSY InUse) and the follow goes on holding every commit in FILE', async () => {
    const db = path.join(dir, 'app.db');
    commitRows(db, 20);
    const file = path.join(dir, 'app.ark');
    fs.writeFileSync(file, 'the old backup');
    // the follow's file has taken FILE's name once FILE no longer holds the old backup
    await whileFollowing(db, file, ['--force'], () => !fs.readFileSync(file).toString().startsWith('the old backup'), async () => {
      const second = await walnut('export', db, '-o', file, '--force');
      expect(second.stderr).toMatch(/WALNUT_BUSY.*another export is writing it/);
      expect(second.status).toBe(2);
    });
  }, 60_000);

  // the same through a symbolic link to FILE (and to its directory): --force follows the link
  // to the file it replaces; the check for a live export did not (exit 0, FILE replaced, the
  // follow writing on into the unlinked file)
  it('is refused through a symbolic link to FILE or to its directory, FILE still the follow\'s', async () => {
    const d = path.join(dir, 'linked');
    fs.mkdirSync(path.join(d, 'backups'), { recursive: true });
    const db = path.join(d, 'app.db');
    commitRows(db, 20);
    const file = path.join(d, 'backups', 'app.ark');
    fs.symlinkSync(file, path.join(d, 'file-link'));
    fs.symlinkSync(path.join(d, 'backups'), path.join(d, 'dir-link'));
    await whileFollowing(db, file, [], () => fs.existsSync(file) && fs.statSync(file).size > 20 * 100, async () => {
      const ino = fs.statSync(file).ino;
      for (const name of [path.join(d, 'file-link'), path.join(d, 'dir-link', 'app.ark')]) {
        const second = await walnut('export', db, '-o', name, '--force');
        expect(second.stderr, name).toMatch(/WALNUT_BUSY.*another export is writing it/);
        expect(second.status, name).toBe(2);
        expect(fs.statSync(file).ino, name).toBe(ino);
      }
    });
  }, 60_000);
});
