// close() raced against the page-1 checks (checkpoint/execute.ts refuseForeignPage1,
// wal/page1-through-wal.ts refuseForeignWal and the recovery's page-size refusal), at every
// interleaving of outcomes.ts CLOSE_INTERLEAVINGS (closeRaces; the truncate also 0 and 5 ms into
// close()):
//  - checkpoint('passive' | 'truncate') of a 16,000+-frame WAL SQLite wrote (page 1 in many of
//    its commits: every one goes through the page-1 check) against the store's close(), the last
//    connection's, which checkpoints too: the checkpoint resolves or is WALNUT_CLOSED; close()
//    resolves; every row is there (integrity ok) and the -wal is gone (one of the two checkpoints
//    copied it all); with a bad newest page-1 frame (past the 4th segment) the checkpoint is
//    WALNUT_CORRUPT (Page1Header) or WALNUT_CLOSED, close() resolves and keeps the -wal, the file
//    is unchanged, no lock is held;
//  - openDatabase() of a database with a foreign -wal (another database's, 1024-byte pages,
//    beside an intact 4096-byte header in WAL or rollback mode) against close() of a walnut/sql
//    handle of that other database (the -wal's source): the open is WALNUT_CORRUPT every time,
//    the database, its -wal and the absence of a -shm unchanged; the other handle's close resolves
//    and its database keeps every row.
// Always: no unhandled rejection, and no lock left (a sqlite3 connection writes and its TRUNCATE
// checkpoint is not busy; F_OFD_GETLK where sqlite3 would read the bad page 1).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib';
import { DB_LOCK } from '../../lib/format/db-header';
import { SHM_LOCK } from '../../lib/format/shm-header';
import { WalnutFile } from '../../lib/io/file';
import { openDatabase } from '../../lib/sql';
import { copyWithWal, page1Frames, segmentEnd, sqliteLargeWal, walFileFrames } from '../helpers/large-wal';
import { closeRaces, expectNoUnhandledRejections } from '../helpers/outcomes';
import { Database, rewritePage1InWal } from '../helpers/sqlite';
import { expectSqliteUnlocked, sqliteIntegrity, sqliteRowCount } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir();
const FRAMES = segmentEnd(3) + 100; // 16,000+
let n = 0;

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

let large: string | null = null;

describe('checkpoint() of a 16,000+-frame SQLite-written WAL against the last close()', () => {
  let largeRows = 0;
  for (const mode of ['passive', 'truncate'] as const) {
    it(`${mode}: resolves or is WALNUT_CLOSED; close() resolves; every row there, the -wal gone, no lock left`, async () => {
      if (large === null) {
        large = sqliteLargeWal(dir, 'large', 1024, FRAMES);
        const copy = path.join(dir, 'large-count.db');
        copyWithWal(large, copy);
        largeRows = sqliteRowCount(copy, 't');
      }
      const seen: string[] = [];
      // and (truncate) close() first, the checkpoint while close()'s own checkpoint copies the 16,000+ frames
      const interleavings = closeRaces(mode === 'truncate' ? [0, 5] : []);
      for (const [name, run] of interleavings) {
        const db = path.join(dir, `ckpt-${n++}.db`);
        copyWithWal(large, db);
        const store = await open(db, { autoCheckpoint: false });
        expect(store.metrics().walFrames).toBeGreaterThanOrEqual(FRAMES);
        const [c, closed] = await run(() => store.checkpoint(mode), () => store.close());
        expect(closed, name).toEqual({ ok: true, value: undefined });
        seen.push(`${name}: ${c.ok ? JSON.stringify(c.value) : c.code}`);
        if (c.ok) expect(c.value, name).toMatchObject({ mode });
        else expect(c, name).toMatchObject({ walnut: true, code: 'WALNUT_CLOSED' });
        expect(fs.existsSync(`${db}-wal`), `${name}: the -wal left (nothing checkpointed it all)`).toBe(false);
        expect(sqliteIntegrity(db), name).toEqual(['ok']);
        expect(sqliteRowCount(db, 't'), name).toBe(largeRows);
        expectSqliteUnlocked(db);
      }
      console.log(`checkpoint('${mode}') against close(): ${seen.join('; ')}`);
    });
  }

  it('a bad newest page-1 frame (past the 4th segment): the checkpoint is WALNUT_CORRUPT (Page1Header) or WALNUT_CLOSED; close() resolves; the file unchanged, the -wal kept, no lock left', async () => {
    large ??= sqliteLargeWal(dir, 'large', 1024, FRAMES);
    const bad = path.join(dir, 'bad-page1.db');
    copyWithWal(large, bad);
    const newest = page1Frames(`${bad}-wal`).newest;
    expect(newest).toBeGreaterThan(segmentEnd(3));
    rewritePage1InWal(`${bad}-wal`, (page) => page.writeUInt16BE(4096, 16), (frame) => frame === newest);
    const before = fs.readFileSync(bad);
    const seen: string[] = [];
    for (const [name, run] of closeRaces([0])) {
      const db = path.join(dir, `bad-${n++}.db`);
      copyWithWal(bad, db);
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
        expect(sqliteRowCount(other, 'other'), name).toBe(20);
        expect(sqliteIntegrity(other), name).toEqual(['ok']);
        expectSqliteUnlocked(other);
        fs.rmSync(`${app}-wal`); // (sqlite3 beside the foreign -wal would adopt it)
        expect(sqliteRowCount(app, 'app'), name).toBe(3);
        expectSqliteUnlocked(app);
      }
    });
  }
});
