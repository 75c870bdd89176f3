// Hostile: `walnut export app.db -o FILE --follow` (with --force over an old FILE, or creating
// it) whose FILE the user then removes (`rm FILE`) and makes anew at its name, as one rotating a
// backup by hand would. The follow went on writing every later commit into the unlinked file and
// ended with exit 0 and its summary: those commits were in no file, nothing said so. Now the
// follow fails at the next commit, before writing it: WALNUT_IO (reason OutputRemoved), exit 2,
// and the user's new file at FILE's name is left as it is. A FILE renamed (mv) keeps the follow
// going into it, as before: every commit reaches it.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { commitRows } from '../helpers/python-rows';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');

/** `walnut export db -o file --follow ...args`, its exit and stderr once it ends. */
function follow(db: string, file: string, args: string[]) {
  const child = spawn(process.execPath, [bin, 'export', db, '-o', file, '--follow', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  let ended: { status: number | null; signal: NodeJS.Signals | null } | null = null;
  const done = new Promise<void>((resolve) => child.on('close', (status, signal) => {
    ended = { status, signal };
    resolve();
  }));
  return { child, done, stderr: () => stderr, ended: () => ended as { status: number | null; signal: NodeJS.Signals | null } | null };
}

describe('walnut export --follow whose FILE the user removes', () => {
  it.each([
    ['a FILE it created', [] as string[]],
    ['a FILE it replaced (--force)', ['--force']],
  ])('%s, removed and made anew: the next commit fails the follow (WALNUT_IO OutputRemoved, exit 2), the new file is left', async (_what, args) => {
    const d = path.join(dir, args.length === 0 ? 'created' : 'forced');
    fs.mkdirSync(d);
    const db = path.join(d, 'app.db');
    commitRows(db, 20);
    const file = path.join(d, 'app.ark');
    if (args.length > 0) fs.writeFileSync(file, 'the old backup');
    const f = follow(db, file, args);
    try {
      await until(() => fs.existsSync(file) && fs.statSync(file).size > 20 * 100 || f.ended() !== null);
      expect(f.ended(), f.stderr()).toBeNull();
      fs.rmSync(file);
      fs.writeFileSync(file, 'the user\'s new file');
      commitRows(db, 5);
      await until(() => f.ended() !== null, 60_000); // (without the fix: still following the unlinked file at this deadline)
    } finally {
      f.child.kill('SIGTERM');
      await f.done;
    }
    expect(f.stderr()).toMatch(/WALNUT_IO: .*app\.ark was removed while the export followed the database/);
    expect(f.ended()).toEqual({ status: 2, signal: null });
    expect(fs.readFileSync(file, 'utf8')).toBe('the user\'s new file');
  }, 300_000);

  it('a FILE renamed (mv) keeps the follow going into it: every commit reaches it, SIGTERM ends it with exit 0', async () => {
    const d = path.join(dir, 'renamed');
    fs.mkdirSync(d);
    const db = path.join(d, 'app.db');
    commitRows(db, 20);
    const file = path.join(d, 'app.ark');
    const f = follow(db, file, []);
    try {
      await until(() => fs.existsSync(file) && fs.statSync(file).size > 20 * 100);
      fs.renameSync(file, `${file}.1`);
      const before = fs.statSync(`${file}.1`).size;
      commitRows(db, 5);
      await until(() => fs.statSync(`${file}.1`).size > before);
    } finally {
      f.child.kill('SIGTERM');
      await f.done;
    }
    expect(f.ended(), f.stderr()).toEqual({ status: 0, signal: null });
    const restored = path.join(d, 'restored.db');
    const r = await spawnOutput(process.execPath, [bin, 'restore', `${file}.1`, restored]);
    expect(r.status, r.stderr).toBe(0);
    expect(execFileSync('sqlite3', [restored, 'SELECT count(*) FROM t; PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('25\nok');
  }, 300_000);
});
