// Hostile: delta-encoded page replication (PAGE_DELTA: a page sent again goes as the bytes that
// changed against its previous version in the stream, kept natively beside the export's framer,
// native/page_versions.h and the delta mode of native/commit_records.h) across a database that
// shrinks and grows back. A commit that shrinks the database must drop the versions of the pages
// past its new end (versions.Truncate): the replicas and restore drop them too, so a page grown
// back must go whole. A framer that kept the stale versions would encode the grown-back pages,
// nearly the same rows as before the shrink (the same ids, the same blobs but for one byte and
// w), as deltas against the pre-shrink page: a delta the readers apply to their own base (zeros,
// the page being past their end) and refuse (DeltaMismatch), so the restore stops short and the
// replica re-bases. Shrunk by sqlite3 (DELETE + VACUUM, then wal_checkpoint(TRUNCATE), so the
// regrowth usually comes in the WAL's next generation) and by walnut/sql's commits (DELETE + VACUUM);
// grown back by each; one-row updates between (deltas used). Pages of 512 and 65536 bytes, the
// publisher on its worker thread and on the store's loop. A replica open throughout, one opened
// after the last commit, and point-in-time restores at the shrunk, the regrown and the last
// states must equal the primary there: the same page bytes, rows and integrity_check ok.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { openReplica } from '../../lib/replicate/replica';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { openDatabase } from '../../lib/sql/database';
import { spawnOutput } from '../helpers/children';
import { appliedOrError as applied, NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { Database } from '../helpers/sqlite';
import { pageBytes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir('walnut-hostile-delta-shrink-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const ROWS = 48; // about 4 rows a leaf page: 12 leaves (ids below 128: their varints all one byte)

/** Runs `sql` through the sqlite3 command (another process); its output. */
async function sqlite3(file: string, sql: string, busyMs = 10_000): Promise<string> {
  const run = await spawnOutput('sqlite3', ['-bail', '-cmd', `.timeout ${busyMs}`, file], { input: sql });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  return run.stdout.trim();
}

/**
 * One statement (one commit) inserting rows from..to of generation `gen`: w = 100 + gen, v a blob
 * of `size` bytes, its first byte the generation's digit and the rest 'x'. Every leaf page holds
 * as many rows of the same size, so a leaf grown back after a shrink differs from the page the
 * same number had before it only in its rows' ids, w and first bytes of v (a small delta against
 * that stale version, wherever the leaves' boundaries fall).
 */
function fill(from: number, to: number, gen: number, size: number): string {
  return `WITH RECURSIVE s(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM s WHERE i < ${to})
    INSERT INTO t(id, w, v) SELECT i, ${100 + gen}, CAST(printf('%s%.*c', char(48 + ${gen}), ${size - 1}, 'x') AS BLOB) FROM s;`;
}

/** The database as SQLite reads it: every row of t, and integrity_check. */
function sqliteView(file: string): { rows: string; integrity: string } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return {
      rows: JSON.stringify(db.prepare('SELECT id, w, hex(v) AS v FROM t ORDER BY id').all()),
      integrity: String(db.pragma('integrity_check', { simple: true })),
    };
  } finally {
    db.close();
  }
}


interface State {
  pages: Buffer;
  rows: string;
}

/** The replica or restored file equals the primary's state: page bytes, rows, integrity. */
function expectEqual(what: string, pages: Buffer, file: string, state: State, pageSize: number): void {
  expect(pages.length / pageSize, `${what}: pages`).toBe(state.pages.length / pageSize);
  for (let p = 0; p < pages.length / pageSize; p++) {
    const a = pages.subarray(p * pageSize, (p + 1) * pageSize);
    const b = state.pages.subarray(p * pageSize, (p + 1) * pageSize);
    expect(Buffer.compare(a, b), `${what}: page ${p + 1} differs from the primary's`).toBe(0);
  }
  const view = sqliteView(file);
  expect(view.integrity, what).toBe('ok');
  expect(view.rows, `${what}: rows`).toBe(state.rows);
}


describe.skipIf(NATS_SKIP !== null)(`PAGE_DELTA across a database that shrinks and grows back${NATS_SKIP ? ` (skipped: ${NATS_SKIP})` : ''}`, () => {
  describe.each([512, 65536])('page size %i', (pageSize) => {
    it.each([
      { thread: true, where: 'a worker thread' },
      { thread: false, where: "the store's loop" },
    ])('publisher on $where: pages grown back past a shrink go whole (not as deltas against stale versions); replicas and restores at the shrunk, regrown and last commits equal the primary', async ({ thread }) => {
      const server = await startNatsServer();
      started.push(server);
      const name = `p${pageSize}-${thread ? 'worker' : 'loop'}`;
      const file = path.join(dir, `${name}.db`);
      const db = new Database(file);
      db.pragma(`page_size = ${pageSize}`);
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
      db.close(); // the WAL checkpointed away: the stream's base image is commit 0
      const size = Math.floor(pageSize / 5);

      const cleanup: (() => Promise<unknown>)[] = []; // closed in reverse, failed or not (a replica re-basing in a loop would go on)
      const store = await open(file);
      cleanup.push(() => store.close());
      try {
        const stream = `shrink${pageSize}${thread ? 'w' : 'l'}`;
        const r = store.replicateTo({ servers: server.url, stream, thread, stopTimeoutMs: 60_000 });
        const errors: string[] = [];
        r.on('error', (e: Error) => errors.push(`publisher: ${e.message}`));
        await r.ready;
        const livePath = path.join(dir, `${name}-live.db`);
        const live = await openReplica(livePath, { servers: server.url, stream });
        cleanup.push(() => live.close());
        live.on('error', (e: Error) => errors.push(`live replica: ${e.message}`));
        const sql = await openDatabase(file);
        cleanup.push(() => sql.close());

        let seq = 0; // the stream's commit sequence (one per transaction)
        const states = new Map<number, State>();
        const keep = async (): Promise<void> => {
          states.set(seq, { pages: await pageBytes(store), rows: sqliteView(file).rows });
        };

        // grow (sqlite3), and one-row updates through walnut/sql (deltas against the grown pages)
        await sqlite3(file, fill(1, ROWS, 1, size));
        seq++;
        for (const id of [3, 17, 40, 47]) {
          await sql.run('UPDATE t SET w = w + 10 WHERE id = ?', [id]);
          seq++;
        }
        const grown = (await sql.get('PRAGMA page_count')) as { page_count: number };
        // shrink by sqlite3 (secure_delete off, SQLite's default: Debian's sqlite3 turns it on, and
        // then the DELETE rewrites the freed pages as zeros, which the grown-back pages share
        // nothing with; here they keep their rows in the stream until the VACUUM cuts them off),
        // then its TRUNCATE checkpoint: it copies every frame and, the export's read slot being a
        // reader to it (README, follow mode), returns busy after its short busy timeout; the WAL
        // then restarts at the next write when no reader is in it
        await sqlite3(file, 'PRAGMA secure_delete = OFF; DELETE FROM t WHERE id > 8; VACUUM;');
        seq += 2;
        const [, walFrames, copied] = (await sqlite3(file, 'PRAGMA wal_checkpoint(TRUNCATE);', 50)).split('|');
        expect(copied).toBe(walFrames);
        const shrunk = (await sql.get('PRAGMA page_count')) as { page_count: number };
        expect(shrunk.page_count).toBeLessThan(grown.page_count / 2);
        await keep();
        const shrunkSeq = seq;
        // grow back by sqlite3: the same ids on the same page numbers, each row two bytes different
        await sqlite3(file, fill(9, ROWS, 2, size));
        seq++;
        expect(((await sql.get('PRAGMA page_count')) as { page_count: number }).page_count).toBeGreaterThan(shrunk.page_count + 4);
        await keep();
        const regrownSeq = seq;
        // one-row updates: by sqlite3 (one commit each) and through walnut/sql
        await sqlite3(file, 'UPDATE t SET w = w + 10 WHERE id = 12; UPDATE t SET w = w + 10 WHERE id = 30; UPDATE t SET w = w + 1 WHERE id = 45;');
        seq += 3;
        for (const id of [5, 46]) {
          await sql.run('UPDATE t SET w = w + 10 WHERE id = ?', [id]);
          seq++;
        }
        // shrink and grow back through walnut's own commits (walnut/sql)
        await sql.run('DELETE FROM t WHERE id > 20');
        await sql.exec('VACUUM');
        seq += 2;
        await keep();
        const shrunk2Seq = seq;
        await sql.exec(fill(21, ROWS, 3, size));
        await sql.run('UPDATE t SET w = w + 10 WHERE id = 33');
        seq += 2;
        await keep();

        await r.stop();
        const m = r.metrics();
        expect(errors).toEqual([]);
        expect(m.exportedSeq).toBe(seq);
        expect(m.publishedSeq).toBe(seq);
        expect(m.deltaFrames).toBeGreaterThan(0); // pages sent again went as deltas
        const last = states.get(seq)!;
        expect(Buffer.compare(await pageBytes(store), last.pages)).toBe(0); // (toEqual of Buffers is slow: seconds for a MiB)

        // point-in-time restores from the stream: the shrunk state, the regrown one, the one shrunk
        // through walnut, the last (a delta against a stale version stops one: DeltaMismatch)
        for (const until of [shrunkSeq, regrownSeq, shrunk2Seq, seq]) {
          const out = path.join(dir, `${name}-until-${until}.db`);
          expect(await restoreFromNats(out, { servers: server.url, stream, until }), `restore until ${until}`).toMatchObject({ lastCommitSeq: until, stoppedBy: until === seq ? null : 'until' });
          expectEqual(`restore until ${until}`, fs.readFileSync(out), out, states.get(until)!, pageSize);
        }

        // the replica that applied the commits as they came, and one built after them
        await applied(live, seq, m.session);
        expectEqual('live replica', await pageBytes(live.store), livePath, last, pageSize);
        const latePath = path.join(dir, `${name}-late.db`);
        const late = await openReplica(latePath, { servers: server.url, stream });
        cleanup.push(() => late.close());
        await applied(late, seq, m.session);
        expectEqual('late replica', await pageBytes(late.store), latePath, last, pageSize);
        expect(live.lag().rebases).toBe(0); // a delta that did not verify re-bases the replica
        expect(late.lag().rebases).toBe(0);
      } finally {
        for (const close of cleanup.reverse()) await close().catch(() => undefined);
      }
    });
  });
});
