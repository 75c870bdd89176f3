// `walnut verify --level` took whatever Number() made of its text: `--level 0x3`, `--level 3e0`,
// `--level " 4"` and `--level 0b101` ran a check at level 3, 3, 4 and 5 (exit 0) where the help
// says 1..5 and `--level 2.5` or `--level abc` is refused. Only the digits 1 to 5 are a level now;
// anything else is WALNUT_INVALID_ARGUMENT (exit 2, one line), before any file is read.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);

describe('walnut verify --level', () => {
  it('is one of the digits 1..5; anything else is WALNUT_INVALID_ARGUMENT', async () => {
    const db = path.join(dir, 'app.db');
    const s = new Database(db);
    s.pragma('journal_mode = WAL');
    s.exec('CREATE TABLE t(a); INSERT INTO t VALUES (1)');
    s.close();
    for (const level of ['0x3', '3e0', ' 4', '0b101', '05', '3.0', '', '6']) {
      const r = await walnut('verify', db, '--level', level);
      expect(r.status, JSON.stringify(level)).toBe(2);
      expect(r.stderr).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: .*level/);
    }
    const ok = await walnut('verify', db, '--level', '3', '--json');
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, level: 3 });
  });
});
