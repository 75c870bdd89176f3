// restore --force onto a database with a replica's position file (`-replica`: a restore
// companion, io/restore-asides.ts) against close() of the walnut/sql handle that has the database
// open (2,000 rows in its WAL, which close() checkpoints), at every interleaving of outcomes.ts
// CLOSE_INTERLEAVINGS (closeRaces), tried on every turn of the event loop through close(), and
// after it: the restore is refused while the handle is open (WALNUT_BUSY, InUse: the database,
// its rows and its -replica kept) or replaces it (the restored rows; the old -replica, -wal and
// -shm gone, nothing of the restore left beside it); once close() has resolved it always replaces
// it. The same for `walnut restore --force` in another process with close() started 100, 250 and
// 400 ms after it (exit 0, or 2 on WALNUT_BUSY). Always: no unhandled rejection, no lock left (a
// sqlite3 connection writes and its TRUNCATE checkpoint is not busy), integrity ok.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { restore } from '../../lib/export/restore';
import { openDatabase, type Database as SqlDatabase } from '../../lib/sql';
import { spawnOutput } from '../helpers/children';
import { exportOfRows } from '../helpers/export-stream';
import { closeRaces, expectNoUnhandledRejections, settle, type CloseRace, type Outcome } from '../helpers/outcomes';
import { expectSqliteUnlocked, sqliteIntegrity, sqliteRowCount } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
let n = 0;

/**
 * `close` started, then `verb` tried on every turn of the event loop until it succeeds or close()
 * has resolved (once more after that): each refusal must be WALNUT_BUSY reason InUse. The last
 * attempt's outcome and close()'s.
 */
async function triedThroughClose(verb: () => Promise<unknown>, close: () => Promise<unknown>): Promise<[Outcome, Outcome]> {
  let closed: Outcome | null = null;
  const c = settle(close(), 'close()').then((o) => (closed = o));
  for (let attempt = 1; ; attempt++) {
    const wasClosed = closed !== null;
    const r = await settle(verb(), 'restore through close()');
    if (r.ok || wasClosed) {
      console.log(`restore tried through close(): attempt ${attempt} ${r.ok ? 'replaced' : 'refused'} it, ${wasClosed ? 'after' : 'before'} close() resolved`);
      return [r, await c];
    }
    expect(r, 'a refusal while close() runs').toMatchObject({ walnut: true, code: 'WALNUT_BUSY', message: expect.stringMatching(/refusing to replace .* it is open/) });
    await new Promise((res) => setImmediate(res));
  }
}

const position = Buffer.alloc(4096, 7); // a replica's position file (restore does not read it)

/** An export of a 30-row database. */
const exportOf30Rows = (): Promise<Buffer> => exportOfRows(dir, `restore-src-${n++}`, 30);

/** A walnut/sql handle on `target` (2,000 rows committed, autoCheckpoint off: its WAL holds them) and a -replica beside it. */
async function openWithReplica(target: string): Promise<SqlDatabase> {
  const db = await openDatabase(target, { autoCheckpoint: false });
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  await db.transaction(async (tx) => {
    for (let i = 0; i < 2000; i++) await tx.run('INSERT INTO t(v) VALUES (?)', [`old ${i} ${'x'.repeat(200)}`]);
  });
  fs.writeFileSync(`${target}-replica`, position);
  return db;
}

describe("restore --force onto a database with a -replica position file against close() of the handle that has it open", () => {
  it('refused while it is open (WALNUT_BUSY InUse: rows and -replica kept) or replaced (-replica gone); after close() resolved, replaced', async () => {
    const bytes = await exportOf30Rows();
    const outcomes: string[] = [];
    const interleavings: [string, CloseRace][] = [
      ...closeRaces(),
      // close() first, a restore tried on every turn while it checkpoints 2,000 rows and removes the -wal and -shm
      ['tried on every turn through close()', triedThroughClose],
      ['after close() resolved', async (verb, close) => {
        const c = await settle(close(), 'close()');
        return [await settle(verb(), 'restore after close()'), c];
      }],
    ];
    for (const [name, run] of interleavings) {
      const d = path.join(dir, `restore-${n++}`);
      fs.mkdirSync(d);
      const target = path.join(d, 'app.db');
      const db = await openWithReplica(target);
      const [r, closed] = await run(() => restore(bytes, target, { force: true }), () => db.close());
      expect(closed, name).toEqual({ ok: true, value: undefined });
      outcomes.push(`${name}: ${r.ok ? 'replaced' : r.code}`);
      if (r.ok) {
        expect(fs.readdirSync(d), `${name}: the old -replica, -wal or -shm left beside the restored database`).toEqual(['app.db']);
        expect(sqliteRowCount(target, 't'), name).toBe(30);
      } else {
        expect(r, name).toMatchObject({ walnut: true, code: 'WALNUT_BUSY', message: expect.stringMatching(/refusing to replace .* it is open/) });
        expect(name, 'refused after close() resolved').not.toBe('after close() resolved');
        expect(sqliteRowCount(target, 't'), `${name}: the old rows`).toBe(2000);
        expect(fs.readFileSync(`${target}-replica`).equals(position), `${name}: the -replica`).toBe(true);
      }
      expect(fs.readdirSync(d).filter((f) => f.includes('.restore')), `${name}: the restore's files left`).toEqual([]);
      expect(sqliteIntegrity(target), name).toEqual(['ok']);
      expectSqliteUnlocked(target);
    }
    console.log(`restore against close(): ${outcomes.join('; ')}`);
  });

  it('walnut restore --force (the CLI, another process) with close() started 100-400 ms after it: exits 0 having replaced it, or 2 on WALNUT_BUSY with the old rows and -replica kept; after close() it replaces it', async () => {
    const ark = path.join(dir, 'restore-cli.ark');
    fs.writeFileSync(ark, await exportOf30Rows());
    const seen: string[] = [];
    for (const delayMs of [100, 250, 400, -1]) {
      const d = path.join(dir, `restore-cli-${n++}`);
      fs.mkdirSync(d);
      const target = path.join(d, 'app.db');
      const db = await openWithReplica(target);
      let closed: Promise<Outcome> | null = null;
      if (delayMs < 0) closed = settle(db.close(), 'close()');
      const cli = spawnOutput(process.execPath, [bin, 'restore', '--force', ark, target]);
      if (delayMs >= 0) {
        await new Promise((r) => setTimeout(r, delayMs));
        closed = settle(db.close(), 'close()');
      }
      const r = await cli;
      expect(await closed).toEqual({ ok: true, value: undefined });
      seen.push(`${delayMs < 0 ? 'after close()' : `close() ${delayMs} ms after`}: exit ${r.status}`);
      if (r.status === 0) {
        expect(fs.readdirSync(d), `${delayMs}`).toEqual(['app.db']); // the old -replica, -wal, -shm gone, nothing of the restore left
        expect(sqliteRowCount(target, 't')).toBe(30);
      } else {
        expect(delayMs, `refused after close() resolved: ${r.stderr}`).toBeGreaterThanOrEqual(0);
        expect(r.status, r.stderr).toBe(2); // (the CLI's exit for a failure)
        expect(r.stderr).toMatch(/WALNUT_BUSY.*it is open/);
        expect(fs.readFileSync(`${target}-replica`).equals(position)).toBe(true);
        expect(fs.readdirSync(d).filter((f) => f.includes('.restore'))).toEqual([]);
        expect(sqliteRowCount(target, 't')).toBe(2000);
      }
      expect(sqliteIntegrity(target)).toEqual(['ok']);
      expectSqliteUnlocked(target);
    }
    console.log(`walnut restore --force against close(): ${seen.join('; ')}`);
  });
});
