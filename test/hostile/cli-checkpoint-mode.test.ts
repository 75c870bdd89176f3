// `walnut checkpoint --mode <bad>` refuses the mode before it opens anything: it opened the
// database first (creating and removing a -wal and -shm beside it, waiting for locks as an open
// does) and said WALNUT_CANTOPEN (NotWalMode) for a rollback-journal database, whose mode was
// never the problem.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
// awaited, not spawnSync: a test's run of them holds the vitest worker's event loop (14-17 s at
// load 15), and its RPC times out at 60 s
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);

/** Names and modification times (ns) of the directory and what is in it. */
function listing(d: string): string[] {
  return [d, ...fs.readdirSync(d).map((f) => path.join(d, f))].map((f) => `${f} ${fs.statSync(f, { bigint: true }).mtimeNs}`);
}

describe('walnut checkpoint --mode', () => {
  it('a mode that is none of the four is WALNUT_INVALID_ARGUMENT before the database is opened', async () => {
    for (const journal of ['wal', 'delete']) {
      const sub = fs.mkdtempSync(path.join(dir, `${journal}-`));
      const db = path.join(sub, 'app.db');
      const s = new Database(db);
      s.pragma(`journal_mode = ${journal}`);
      s.exec('CREATE TABLE t(a); INSERT INTO t VALUES (1)');
      s.close();
      const before = listing(sub);
      for (const mode of journal === 'wal' ? ['bogus', 'PASSIVE'] : ['']) {
        const r = await walnut('checkpoint', db, '--mode', mode);
        expect(listing(sub), `${journal} ${mode}`).toEqual(before); // nothing created, removed or written
        expect(r.status).toBe(2);
        expect(r.stderr).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: .*--mode/);
      }
    }
  });
});
