// `walnut checkpoint`, `recover`, `replicate` and `restore` (its stream file) refused a path
// they could not look up with "no such file" whatever the cause: a database in a directory the
// user may not search (EACCES), a symbolic-link loop (ELOOP), `app.db/` (ENOTDIR). The file was
// there; the user was sent looking for a typo while inspect and verify, given the same path,
// said "permission denied". Now the refusal names the cause (still WALNUT_CANTOPEN, exit 2), and
// only a path that does not exist is "no such file".
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { asNobody, nobodySkip } from '../helpers/as-nobody';
import { spawnOutput } from '../helpers/children';
import { sqliteWritesWal, typicalWork } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);

/** Each command that takes an existing database (or stream) path, run on `p`. */
const commands = (p: string): string[][] => [
  ['checkpoint', p],
  ['recover', p],
  ['recover', p, '--repair'],
  ['replicate', p, '--nats', 'nats://127.0.0.1:1', '--stream', 's'],
  ['restore', p, path.join(dir, 'never-made.db')],
];

describe('a path that cannot be looked up is refused naming why', () => {
  it('a symbolic-link loop (ELOOP) and a file followed by a slash (ENOTDIR): not "no such file"', async () => {
    const db = sqliteWritesWal(dir, 'app', 4096, typicalWork(3, 1)).db;
    const loop = path.join(dir, 'loop-a');
    fs.symlinkSync(path.join(dir, 'loop-b'), loop);
    fs.symlinkSync(loop, path.join(dir, 'loop-b'));
    for (const [p, cause] of [[loop, /too many (levels of )?symbolic links/i], [`${db}/`, /not a directory/i]] as const) {
      for (const args of commands(p)) {
        const r = await walnut(...args);
        expect(r.status, args.join(' ')).toBe(2);
        expect(r.stderr, args.join(' ')).toMatch(/^walnut: WALNUT_CANTOPEN: [^\n]+\n$/);
        expect(r.stderr, args.join(' ')).not.toMatch(/no such file/);
        expect(r.stderr, args.join(' ')).toMatch(cause);
      }
    }
    expect(fs.existsSync(path.join(dir, 'never-made.db'))).toBe(false);
    // a path that is not there is still "no such file"
    const r = await walnut('checkpoint', path.join(dir, 'missing.db'));
    expect(r.stderr).toMatch(/^walnut: WALNUT_CANTOPEN: cannot open the database .*missing\.db: no such file\n$/);
  });

  it.skipIf(nobodySkip() !== null)('a file in a directory the user may not search (EACCES): "permission denied", as inspect says', async () => {
    const closed = path.join(dir, 'closed');
    fs.mkdirSync(closed, { mode: 0o700 });
    fs.chmodSync(dir, 0o755); // (nobody reaches `closed` and is stopped there)
    const db = sqliteWritesWal(closed, 'app', 4096, typicalWork(3, 2)).db;
    for (const args of [...commands(db), ['inspect', db]]) {
      const r = await asNobody(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^walnut: WALNUT_CANTOPEN: [^\n]*permission denied[^\n]*\n$/i);
    }
  });
});
