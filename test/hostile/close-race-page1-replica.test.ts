// close() raced against what the page-1 and restore-companion work added (checkpoint/execute.ts
// refuseForeignPage1, wal/page1-through-wal.ts refuseForeignWal, a restore's `-replica`
// companion), at every interleaving of outcomes.ts CLOSE_INTERLEAVINGS (closeRaces; the
// truncate also 0 and 5 ms into close(), the restore also tried on every turn through it):
//  - checkpoint('passive' | 'truncate') of a 16,000+-frame WAL SQLite wrote (page 1 in many of
//    its commits: every one goes through the page-1 check) against the store's close(), the last
//    connection's, which checkpoints too: the checkpoint resolves (not busy, or busy when close()
//    held the checkpoint lock) or is WALNUT_CLOSED; close() resolves; every row is there
//    (integrity ok) and the -wal is gone (one of the two checkpoints copied it all); with a bad
//    newest page-1 frame (past the 4th segment) the checkpoint is WALNUT_CORRUPT (Page1Header) or
//    WALNUT_CLOSED, close() resolves and keeps the -wal, the file is unchanged, no lock is held;
//  - openDatabase() of a database with a foreign -wal (another database's, 1024-byte pages,
//    beside an intact 4096-byte header in WAL or rollback mode) against close() of a walnut/sql
//    handle of that other database (the -wal's source): the open is WALNUT_CORRUPT every time,
//    the database, its -wal and the absence of a -shm unchanged; the other handle's close resolves
//    and its database keeps every row;
//  - restore(..., { force: true }) onto a database with a replica's position file (-replica)
//    against close() of the walnut/sql handle that has the database open: the restore is refused
//    while the handle is open (WALNUT_BUSY, InUse: the database, its rows and its -replica kept)
//    or replaces it (the restored rows, the -replica gone, nothing of the restore left beside it);
//    once close() has resolved it always replaces it; the same for `walnut restore --force` in
//    another process with close() started 100, 250, 400 ms after it (exit 0, or 2 on WALNUT_BUSY);
// Always: no unhandled rejection, and no lock left (a sqlite3 connection writes and its TRUNCATE
// checkpoint is not busy).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib';
import { DB_LOCK } from '../../lib/format/db-header';
import { SHM_LOCK } from '../../lib/format/shm-header';
import { WalnutFile } from '../../lib/io/file';
import { restore } from '../../lib/export/restore';
import { createExportStream } from '../../lib/export/stream';
import { openDatabase, type Database as SqlDatabase } from '../../lib/sql';
import { spawnOutput } from '../helpers/children';
import { page1Frames, segmentEnd, sqliteLargeWal, walFileFrames } from '../helpers/large-wal';
import { closeRaces, expectNoUnhandledRejections, settle, type CloseRace, type Outcome } from '../helpers/outcomes';
import { Database, rewritePage1InWal } from '../helpers/sqlite';
import { sqliteIntegrity } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const FRAMES = segmentEnd(3) + 100; // 16,000+
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

/** Locks anyone holds on `db` (PENDING, RESERVED, SHARED) or its -shm (WRITE .. DMS), where sqlite3 cannot be asked (it would read a bad page 1). */
function lockHolders(db: string): string[] {
  const held: string[] = [];
  const ranges: [string, number, number][] = [[db, DB_LOCK.PENDING, 2 + DB_LOCK.SHARED_SIZE], [`${db}-shm`, SHM_LOCK.WRITE, SHM_LOCK.DMS - SHM_LOCK.WRITE + 1]];
  for (const [file, start, length] of ranges) {
    if (!fs.existsSync(file)) continue;
    const f = WalnutFile.openSync(file, { readOnly: true });
    try {
      const holder = f.lockHolder(start, length, 'exclusive');
      if (holder !== null) held.push(`${file}: ${JSON.stringify(holder)}`);
    } finally {
      f.closeSync();
    }
  }
  return held;
}

function rows(db: string, table = 't'): number {
  const s = new Database(db, { readonly: true });
  try {
    return (s.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    s.close();
  }
}

/** No lock is left on `db`: a sqlite3 connection writes (2 s busy timeout), and its TRUNCATE checkpoint is not busy. */
function expectUnlocked(db: string): void {
  const s = new Database(db, { timeout: 2000 });
  try {
    s.exec('CREATE TABLE IF NOT EXISTS lock_probe(x); INSERT INTO lock_probe VALUES (1)');
    expect((s.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[])[0]!.busy, `${db}: a lock left`).toBe(0);
    s.exec('DROP TABLE lock_probe');
  } finally {
    s.close();
  }
}

let large: string | null = null;

describe('checkpoint() of a 16,000+-frame SQLite-written WAL against the last close()', () => {
  let largeRows = 0;
  for (const mode of ['passive', 'truncate'] as const) {
    it(`${mode}: resolves or is WALNUT_CLOSED; close() resolves; every row there, the -wal gone, no lock left`, async () => {
      if (large === null) {
        large = sqliteLargeWal(dir, 'large', 1024, FRAMES);
        const copy = path.join(dir, 'large-count.db');
        fs.copyFileSync(large, copy);
        fs.copyFileSync(`${large}-wal`, `${copy}-wal`);
        largeRows = rows(copy);
      }
      const seen: string[] = [];
      // and (truncate) close() first, the checkpoint while close()'s own checkpoint copies the 16,000+ frames
      const interleavings = closeRaces(mode === 'truncate' ? [0, 5] : []);
      for (const [name, run] of interleavings) {
        const db = path.join(dir, `ckpt-${n++}.db`);
        fs.copyFileSync(large, db);
        fs.copyFileSync(`${large}-wal`, `${db}-wal`);
        const store = await open(db, { autoCheckpoint: false });
        expect(store.metrics().walFrames).toBeGreaterThanOrEqual(FRAMES);
        const [c, closed] = await run(() => store.checkpoint(mode), () => store.close());
        expect(closed, name).toEqual({ ok: true, value: undefined });
        seen.push(`${name}: ${c.ok ? JSON.stringify(c.value) : c.code}`);
        if (c.ok) expect(c.value, name).toMatchObject({ mode });
        else expect(c, name).toMatchObject({ walnut: true, code: 'WALNUT_CLOSED' });
        expect(fs.existsSync(`${db}-wal`), `${name}: the -wal left (nothing checkpointed it all)`).toBe(false);
        expect(sqliteIntegrity(db), name).toEqual(['ok']);
        expect(rows(db), name).toBe(largeRows);
        expectUnlocked(db);
      }
      console.log(`checkpoint('${mode}') against close(): ${seen.join('; ')}`);
    });
  }

  it('a bad newest page-1 frame (past the 4th segment): the checkpoint is WALNUT_CORRUPT (Page1Header) or WALNUT_CLOSED; close() resolves; the file unchanged, the -wal kept, no lock left', async () => {
    large ??= sqliteLargeWal(dir, 'large', 1024, FRAMES);
    const bad = path.join(dir, 'bad-page1.db');
    fs.copyFileSync(large, bad);
    fs.copyFileSync(`${large}-wal`, `${bad}-wal`);
    const newest = page1Frames(`${bad}-wal`).newest;
    expect(newest).toBeGreaterThan(segmentEnd(3));
    rewritePage1InWal(`${bad}-wal`, (page) => page.writeUInt16BE(4096, 16), (frame) => frame === newest);
    const before = fs.readFileSync(bad);
    const seen: string[] = [];
    for (const [name, run] of closeRaces([0])) {
      const db = path.join(dir, `bad-${n++}.db`);
      fs.copyFileSync(bad, db);
      fs.copyFileSync(`${bad}-wal`, `${db}-wal`);
      const store = await open(db, { autoCheckpoint: false });
      const [c, closed] = await run(() => store.checkpoint('truncate'), () => store.close());
      expect(closed, name).toEqual({ ok: true, value: undefined });
      seen.push(`${name}: ${c.ok ? JSON.stringify(c.value) : c.code}`);
      expect(c, name).toMatchObject({ ok: false, walnut: true });
      expect(['WALNUT_CORRUPT', 'WALNUT_CLOSED'], name).toContain((c as { code?: string }).code);
      expect(fs.readFileSync(db).equals(before), `${name}: the database file changed`).toBe(true);
      expect(walFileFrames(`${db}-wal`), `${name}: the -wal`).toBeGreaterThanOrEqual(FRAMES);
      expect(lockHolders(db), `${name}: a lock left`).toEqual([]);
    }
    console.log(`checkpoint('truncate') of a bad page 1 against close(): ${seen.join('; ')}`);
  });
});

describe('openDatabase() of a database with a foreign -wal against close() of a handle of the -wal\'s source', () => {
  for (const mode of ['wal', 'rollback'] as const) {
    it(`${mode}-mode header: WALNUT_CORRUPT every time, nothing changed; the other close() resolves, its database whole`, async () => {
      for (const [name, run] of closeRaces()) {
        const d = path.join(dir, `foreign-${n++}`);
        fs.mkdirSync(d);
        // other.db: 1024-byte pages, its WAL live under a walnut/sql handle (page 1 committed in it)
        const other = path.join(d, 'other.db');
        const handle = await openDatabase(other, { pageSize: 1024, autoCheckpoint: false });
        await handle.exec('CREATE TABLE other(y)');
        for (let i = 0; i < 20; i++) await handle.run('INSERT INTO other VALUES (?)', [i]);
        // app.db: 4096-byte pages, intact header, and other.db's live -wal copied beside it
        const app = path.join(d, 'app.db');
        const a = new Database(app);
        a.pragma('page_size = 4096');
        if (mode === 'wal') a.pragma('journal_mode = WAL');
        a.exec('CREATE TABLE app(x); INSERT INTO app VALUES (1), (2), (3)');
        a.close();
        fs.copyFileSync(`${other}-wal`, `${app}-wal`);
        const before = [fs.readFileSync(app), fs.readFileSync(`${app}-wal`)];
        const [o, closed] = await run(() => openDatabase(app), () => handle.close());
        if (o.ok) await (o.value as { close(): Promise<void> }).close();
        expect(o, name).toMatchObject({ ok: false, walnut: true, code: 'WALNUT_CORRUPT' });
        expect(closed, name).toEqual({ ok: true, value: undefined });
        expect(fs.readFileSync(app).equals(before[0]!) && fs.readFileSync(`${app}-wal`).equals(before[1]!), `${name}: app.db or its -wal changed`).toBe(true);
        expect(fs.existsSync(`${app}-shm`), `${name}: a -shm left`).toBe(false);
        expect(rows(other, 'other'), name).toBe(20);
        expect(sqliteIntegrity(other), name).toEqual(['ok']);
        expectUnlocked(other);
        fs.rmSync(`${app}-wal`); // (sqlite3 beside the foreign -wal would adopt it)
        expect(rows(app, 'app'), name).toBe(3);
        expectUnlocked(app);
      }
    });
  }
});

const position = Buffer.alloc(4096, 7); // a replica's position file (restore does not read it)

/** An export of a 30-row database ('restored 0' ..). */
async function exportOf30Rows(): Promise<Buffer> {
  const src = path.join(dir, `restore-src-${n++}.db`);
  const s = new Database(src);
  s.pragma('journal_mode = WAL');
  s.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  for (let i = 0; i < 30; i++) s.prepare('INSERT INTO t(v) VALUES (?)').run(`restored ${i}`);
  s.close();
  const chunks: Buffer[] = [];
  for await (const c of createExportStream(src)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

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
        expect(rows(target), name).toBe(30);
      } else {
        expect(r, name).toMatchObject({ walnut: true, code: 'WALNUT_BUSY', message: expect.stringMatching(/refusing to replace .* it is open/) });
        expect(name, 'refused after close() resolved').not.toBe('after close() resolved');
        expect(rows(target), `${name}: the old rows`).toBe(2000);
        expect(fs.readFileSync(`${target}-replica`).equals(position), `${name}: the -replica`).toBe(true);
      }
      expect(fs.readdirSync(d).filter((f) => f.includes('.restore')), `${name}: the restore's files left`).toEqual([]);
      expect(sqliteIntegrity(target), name).toEqual(['ok']);
      expectUnlocked(target);
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
        expect(rows(target)).toBe(30);
      } else {
        expect(delayMs, `refused after close() resolved: ${r.stderr}`).toBeGreaterThanOrEqual(0);
        expect(r.status, r.stderr).toBe(2); // (the CLI's exit for a failure)
        expect(r.stderr).toMatch(/WALNUT_BUSY.*it is open/);
        expect(fs.readFileSync(`${target}-replica`).equals(position)).toBe(true);
        expect(fs.readdirSync(d).filter((f) => f.includes('.restore'))).toEqual([]);
        expect(rows(target)).toBe(2000);
      }
      expect(sqliteIntegrity(target)).toEqual(['ok']);
      expectUnlocked(target);
    }
    console.log(`walnut restore --force against close(): ${seen.join('; ')}`);
  });
});
