// Hostile: SQLite transactions whose WAL frames go past their own commit's database size. A
// transaction larger than its cache spills dirty pages to the WAL before its commit frame; when
// it then shrinks the database (auto_vacuum=FULL moves pages down and truncates at commit), the
// spilled frames of pages past the new end stay in the WAL, in the transaction, and no reader
// ever reads them (SQLite's checkpoint skips them). Found with a 3,000-row DELETE at
// cache_size 5: 1,404 of the transaction's 1,410 frames were past its commit size of 103 pages.
//  - shrink: the replica put those pages in its batch and its walnut commit was refused
//    (WALNUT_INVALID_ARGUMENT, dbSize below a page the commit writes), retried forever: it never
//    applied another commit (appliedSeq stayed at the commit before).
//  - grow and shrink back in one transaction (the commit's size no smaller than the one before):
//    the publisher kept the spilled pages' versions, so the same pages written again later went
//    as PAGE_DELTAs against them; replicas and restore have no such version (the page is past
//    their end: zeros), so the replica re-based on that delta in a loop (77 re-bases in 5 s,
//    never past the commit) and restore stopped there (DeltaMismatch).
// Written by the sqlite3 command (another process) beside a replicating walnut store; a replica
// open throughout applies one commit per batch (the shrinking one first in its batch), one built
// after the last commit reads them all; both and a restore must equal the primary.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { openReplica } from '../../lib/replicate/replica';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { spawnOutput } from '../helpers/children';
import { appliedOrError as applied, NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir('walnut-hostile-spilled-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

/** Runs `sql` through the sqlite3 command (another process); its output. */
async function sqlite3(file: string, sql: string): Promise<string> {
  const run = await spawnOutput('sqlite3', ['-bail', '-cmd', '.timeout 10000', file], { input: sql });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  return run.stdout.trim();
}

/** Every row of t and integrity_check, as SQLite reads the file. */
function sqliteView(file: string): { rows: string; integrity: string } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return { rows: JSON.stringify(db.prepare('SELECT id, hex(v) AS v FROM t ORDER BY id').all()), integrity: String(db.pragma('integrity_check', { simple: true })) };
  } finally {
    db.close();
  }
}


const ROWS = (from: number, to: number, fill: string): string =>
  `WITH RECURSIVE s(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM s WHERE i < ${to}) INSERT INTO t SELECT i, printf('%.1400c', '${fill}') FROM s;`;

describe.skipIf(NATS_SKIP !== null)(`a SQLite transaction with frames past its commit's size${NATS_SKIP ? ` (skipped: ${NATS_SKIP})` : ''}`, () => {
  it.each([
    {
      name: 'shrink',
      // 1,500 rows, then one DELETE of most of them spilling at cache_size 5: the database shrinks
      // to a few dozen pages, hundreds of the transaction's frames past that
      init: ROWS(1, 1500, 'x'),
      work: ['PRAGMA cache_size = 5; DELETE FROM t WHERE id > 60;', ROWS(2000, 2004, 'q')],
      commits: 2,
    },
    {
      name: 'grow and shrink back',
      // rows inserted and deleted again in one transaction (spilled: their pages past the end),
      // then the same rows inserted again: the same pages, nearly the same bytes
      init: ROWS(1, 60, 'x'),
      work: [`PRAGMA cache_size = 5; BEGIN; ${ROWS(1000, 1999, 'y')} DELETE FROM t WHERE id >= 1000; COMMIT;`, ROWS(1000, 1999, 'y'), "UPDATE t SET v = printf('%.1400c', 'z') WHERE id = 1500;"],
      commits: 3,
    },
  ])('$name: the replicas apply every commit without re-basing and equal the primary, as does a restore', async ({ name, init, work, commits }) => {
    const server = await startNatsServer();
    started.push(server);
    const file = path.join(dir, `${name.replace(/ /g, '-')}.db`);
    const db = new Database(file);
    db.pragma('auto_vacuum = FULL');
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
    db.exec(init);
    db.close();

    const cleanup: (() => Promise<unknown>)[] = [];
    const store = await open(file);
    cleanup.push(() => store.close());
    try {
      const stream = `spilled${name.length}`;
      const r = store.replicateTo({ servers: server.url, stream, stopTimeoutMs: 60_000 });
      const errors: string[] = [];
      r.on('error', (e: Error) => errors.push(`publisher: ${e.message}`));
      await r.ready;
      const livePath = path.join(dir, `${name.replace(/ /g, '-')}-live.db`);
      const live = await openReplica(livePath, { servers: server.url, stream, maxBatchCommits: 1 });
      cleanup.push(() => live.close());
      // secure_delete off (Debian's sqlite3 turns it on): freed pages keep their rows in the WAL
      for (const sql of work) await sqlite3(file, `PRAGMA secure_delete = OFF; ${sql}`);
      await r.stop();
      const m = r.metrics();
      expect(errors).toEqual([]);
      expect(m.publishedSeq).toBe(commits);
      const primary = sqliteView(file);
      expect(primary.integrity).toBe('ok');

      await applied(live, commits, m.session);
      const latePath = path.join(dir, `${name.replace(/ /g, '-')}-late.db`);
      const late = await openReplica(latePath, { servers: server.url, stream });
      cleanup.push(() => late.close());
      await applied(late, commits, m.session);
      for (const [what, replica] of [['live', live], ['late', late]] as const) {
        expect(replica.lag().rebases, `${what} replica re-based`).toBe(0);
        expect(sqliteView(replica.path), `${what} replica`).toEqual(primary);
      }
      const out = path.join(dir, `${name.replace(/ /g, '-')}-restored.db`);
      expect(await restoreFromNats(out, { servers: server.url, stream })).toMatchObject({ lastCommitSeq: commits, stoppedBy: null });
      expect(sqliteView(out)).toEqual(primary);
    } finally {
      for (const close of cleanup.reverse()) await close().catch(() => undefined);
    }
  }, 60_000);
});
