// A call whose commit an injected write error lost (WALNUT_IO for EIO, WALNUT_FULL for ENOSPC:
// nothing of it written, the store goes on) left the connection's last_insert_rowid() at the
// rowid of the row that is not there: the caller's retry of
//   INSERT INTO ch(k, pid) VALUES (k, last_insert_rowid())
// after a parent row read the lost child's own rowid, and ch.pid pointed at the ch row itself
// (8:7), for run() and transaction() (exec() set it back already). Now every failure of a
// commit sets it back, not only a conflict's (exec-progress.ts lostItsRows, database.ts
// TransactionRowid). So for a transaction the caller opened through exec() or run() (BEGIN
// .. COMMIT across calls, or in one exec() text): its lost COMMIT set the rowid back to before
// the COMMIT only, the lost INSERT's (8:7); now to before its BEGIN (database.ts #autocommitMark). Each call runs in a child process (sql-lost-write-rowid-child.js: the
// fault hook is armed there); the rows are checked there and again with sqlite3 after it exits.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { HELPERS, runJsonChild } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const PARENT_ID = String(3 * 2 ** 32 + 7);

/** Runs the child: `call` loses its commit to a write failing with `errno`, then is retried. */
async function lostToWrite(call: 'run' | 'transaction' | 'exec' | 'exec-begin' | 'run-begin' | 'exec-text', errno: number): Promise<{ file: string; out: { parent: string; lost: string; retry: string; rows: string[] } }> {
  const file = path.join(tmpDir(), `lost-write-${call}-${errno}.db`);
  return { file, out: await runJsonChild(path.join(HELPERS, 'sql-lost-write-rowid-child.js'), [file, call, String(errno)], { WALNUT_FAULT_INJECTION: '1' }) };
}

for (const [call, errno, code] of [
  ['run', 5, 'WALNUT_IO'],
  ['transaction', 5, 'WALNUT_IO'],
  ['exec', 5, 'WALNUT_IO'],
  ['run', 28, 'WALNUT_FULL'],
  ['exec-begin', 5, 'WALNUT_IO'],
  ['run-begin', 5, 'WALNUT_IO'],
  ['exec-text', 28, 'WALNUT_FULL'],
] as const) {
  test(`${call}() retried after its commit's write failed (${code}) reads the parent's rowid, not the lost row's`, async () => {
    const { file, out } = await lostToWrite(call, errno);
    expect(out.parent).toBe(PARENT_ID);
    expect(out.lost).toBe(code);
    expect(out.retry).toBe('ok');
    // the lost child 7 is not there; the retried child 8 points at the parent (8:7 before: at the lost row)
    expect(out.rows).toEqual([`8:${PARENT_ID}`]);
    const sqlite3 = (sql: string): string => execFileSync('sqlite3', [file, sql], { encoding: 'utf8' }).trim();
    expect(sqlite3("SELECT group_concat(k || ':' || pid) FROM ch")).toBe(`8:${PARENT_ID}`);
    expect(sqlite3('PRAGMA integrity_check')).toBe('ok');
  }, 10_000);
}
