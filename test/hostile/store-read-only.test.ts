// A store opened read-only writes nothing. walnut/sql's openDatabase(path, { readOnly: true })
// refused every SQL write, but `db.store`, the walnut store under it, still took commit(),
// sequence(), a transaction's commit, checkpoint() and holdWriteLease(), and wrote the file: a
// commit landed in the -wal, a checkpoint copied the WAL into the database file. Now the store is
// opened read-only itself (open's option readOnly, commit/read-only.ts): each of those fails
// WALNUT_READONLY with walnut/sql's reason (ReadOnlyDatabase, or Replica on a replica's file),
// and the database file and its -wal keep every byte (sha256). The core open(path, { readOnly:
// true }) does the same, reads work, a transaction without writes commits nothing (null), close()
// leaves the -wal; a follow export beside a sqlite3 writer that checkpointed never restarts the
// WAL (it checkpointed the rest into the file), nor does a replication (its worker's connection
// checkpointed at each session's start: the file changed); a missing file is WALNUT_CANTOPEN NotFound and
// is not created; a readOnly that is not a boolean and readOnly with options that write are
// WALNUT_INVALID_ARGUMENT naming the option.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import type { Store } from '../../lib/commit/store';
import { openDatabase } from '../../lib/sql';
import { pythonSqlite } from '../helpers/children';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { fileAndWalSha256 } from '../helpers/read-only-files';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir('walnut-store-read-only-');
let server: NatsNode | null = null;
afterAll(() => stopNats([server]));
let n = 0;
const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A WAL-mode database with rows in its file and more in its -wal (closed with keepWal: the frames stay). */
async function walDatabase(): Promise<string> {
  const file = path.join(dir, `ro${n++}.db`);
  const db = await openDatabase(file, { keepWal: true });
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); PRAGMA user_version=7');
  await db.store.checkpoint('passive'); // the table in the file
  for (let i = 0; i < 5; i++) await db.run('INSERT INTO t(v) VALUES (?)', [`row ${i}`]); // the rows in the -wal
  await db.close();
  expect(fs.statSync(`${file}-wal`).size).toBeGreaterThan(32);
  return file;
}


/** Page 1 as `store` reads it, with user_version set to `v`. */
async function page1With(store: Store, v: number): Promise<Uint8Array> {
  const snap = await store.snapshot();
  try {
    const page = new Uint8Array(snap.readSync(1));
    new DataView(page.buffer).setUint32(60, v);
    return page;
  } finally {
    snap.release();
  }
}

/** Every writing verb of `store`, each expected to fail WALNUT_READONLY with `reason`; reads work, a transaction without writes commits nothing. */
async function everyWriteRefused(store: Store, reason: string): Promise<void> {
  const page = await page1With(store, 99);
  const refused = { reason, path: store.path };
  await expectRejectsWalnut(store.commit([{ pgno: 1, data: page }]), 'WALNUT_READONLY', refused);
  const snap = await store.snapshot();
  await expectRejectsWalnut(store.commit([{ pgno: 1, data: page }], { base: snap }), 'WALNUT_READONLY', refused);
  snap.release();
  expectWalnutError(() => store.sequence([{ pgno: 1, data: page }]), 'WALNUT_READONLY', refused);
  const tx = store.begin();
  expect((await tx.read(1)).length).toBe(store.pageSize); // its reads work
  tx.write(1, page);
  await expectRejectsWalnut(tx.commit(), 'WALNUT_READONLY', refused);
  const reading = store.begin();
  await reading.read(1);
  expect(await reading.commit()).toBeNull(); // nothing to write: nothing refused
  for (const mode of ['passive', 'full', 'restart', 'truncate'] as const) await expectRejectsWalnut(store.checkpoint(mode), 'WALNUT_READONLY', refused);
  await expectRejectsWalnut(store.holdWriteLease(), 'WALNUT_READONLY', refused);
  expect(() => store.releaseWriteLease()).toThrow(/no write lease/); // none was taken
  expect(store.chainBrokenBy).toBeNull(); // a refusal breaks no commit chain: nothing was taken into it
}

describe('walnut/sql readOnly: db.store writes nothing either', () => {
  for (const how of ['readOnly: true', "a replica's file (its position file beside it)"] as const) {
    it(`${how}: db.store's commit, sequence, transaction commit, checkpoint and holdWriteLease fail WALNUT_READONLY; the file and -wal keep every byte`, async () => {
      const file = await walDatabase();
      if (how !== 'readOnly: true') fs.writeFileSync(`${file}-replica`, ''); // (what readOnlyFor looks for)
      const before = fileAndWalSha256(file);
      const db = await openDatabase(file, how === 'readOnly: true' ? { readOnly: true } : {});
      try {
        expect(db.readOnly).toBe(true);
        expect(db.store.options.readOnly).toBe(true);
        await everyWriteRefused(db.store, how === 'readOnly: true' ? 'ReadOnlyDatabase' : 'Replica');
        expect(await db.all('SELECT v FROM t ORDER BY id')).toHaveLength(5); // SQL reads still work
        expect(fileAndWalSha256(file)).toEqual(before);
      } finally {
        await db.close();
      }
      expect(fileAndWalSha256(file)).toEqual(before); // close() neither checkpointed nor removed the -wal
      expect(sqlite(file, 'SELECT count(*) FROM t; PRAGMA user_version; PRAGMA integrity_check')).toBe('5\n7\nok');
    });
  }
});

describe('open(path, { readOnly: true })', () => {
  it('refuses every writing verb WALNUT_READONLY (reason ReadOnlyDatabase), reads work, close() leaves the file and -wal as they were', async () => {
    const file = await walDatabase();
    const before = fileAndWalSha256(file);
    const store = await open(file, { readOnly: true });
    try {
      expect(store.options).toMatchObject({ readOnly: true, keepWal: true, autoCheckpoint: false, convert: false, shareLane: false });
      await everyWriteRefused(store, 'ReadOnlyDatabase');
      const snap = await store.snapshot();
      expect(new DataView(snap.readSync(1).buffer).getUint32(60)).toBe(7);
      snap.release();
      expect(fileAndWalSha256(file)).toEqual(before);
    } finally {
      await store.close();
    }
    expect(fileAndWalSha256(file)).toEqual(before);
    // after close(), WALNUT_CLOSED as for any store
    await expectRejectsWalnut(store.commit([{ pgno: 1, data: new Uint8Array(store.pageSize) }]), 'WALNUT_CLOSED');
  });

  it("sees another connection's commits; a follow export beside a sqlite3 writer that checkpointed does not restart the WAL", async () => {
    const file = await walDatabase();
    const store = await open(file, { readOnly: true });
    try {
      // python3 commits and checkpoints everything, then commits more while this store's snapshot
      // keeps it from restarting the WAL: frames left to copy after a checkpoint, which a
      // following export of a read-write store copies into the file before it restarts the WAL
      // itself (export/follow.ts)
      await pythonSqlite(file, "c.execute('PRAGMA wal_autocheckpoint=0')\nfor i in range(20): c.execute('INSERT INTO t(v) VALUES (?)', ('py',))");
      const held = await store.snapshot(); // (a read mark at the WAL's end: the checkpoint copies all, no restart after it)
      await pythonSqlite(file, "c.execute('PRAGMA wal_autocheckpoint=0')\nc.execute('PRAGMA wal_checkpoint(PASSIVE)')\nfor i in range(5): c.execute('INSERT INTO t(v) VALUES (?)', ('py2',))");
      held.release();
      const before = fileAndWalSha256(file);
      const records: string[] = [];
      const handle = store.exportTo({ async appendRecord(r: { type: string }) { records.push(r.type); }, async flush() {} } as never, { follow: true, pollMs: 5 });
      await sleep(600); // many restart attempts' worth
      await handle.stop();
      expect(records.length).toBeGreaterThan(0);
      expect(fileAndWalSha256(file), 'the export restarted the WAL (a checkpoint and a new WAL header)').toEqual(before);
      const snap = await store.snapshot();
      snap.release();
      expect(sqlite(file, 'SELECT count(*) FROM t')).toBe('30');
    } finally {
      await store.close();
    }
  });

  it.skipIf(NATS_SKIP !== null)("replicateTo (its worker's connection checkpointed as a session began) publishes and writes nothing", async () => {
    server ??= await startNatsServer();
    const file = await walDatabase();
    const before = fileAndWalSha256(file);
    const store = await open(file, { readOnly: true });
    try {
      const r = store.replicateTo({ servers: server.url, stream: `readonly${n++}` });
      await r.ready;
      await r.stop();
      expect(r.metrics().publishedSeq).toBeGreaterThan(0);
      expect(fileAndWalSha256(file)).toEqual(before);
    } finally {
      await store.close();
    }
    expect(fileAndWalSha256(file)).toEqual(before);
  });

  it('a missing file is WALNUT_CANTOPEN NotFound and is not created; an empty or rollback-journal file is refused unchanged', async () => {
    const missing = path.join(dir, `missing${n++}.db`);
    await expectRejectsWalnut(open(missing, { readOnly: true }), 'WALNUT_CANTOPEN', { reason: 'NotFound' });
    expect(fs.existsSync(missing)).toBe(false);
    const empty = path.join(dir, `empty${n++}.db`);
    fs.writeFileSync(empty, '');
    await expectRejectsWalnut(open(empty, { readOnly: true }), 'WALNUT_CANTOPEN');
    expect(fs.statSync(empty).size).toBe(0);
    const rollback = path.join(dir, `rollback${n++}.db`);
    sqlite(rollback, 'CREATE TABLE t(a); INSERT INTO t VALUES (1)');
    const was = fileAndWalSha256(rollback);
    await expectRejectsWalnut(open(rollback, { readOnly: true }), 'WALNUT_CANTOPEN', { reason: 'NotWalMode' });
    expect(fileAndWalSha256(rollback).db).toBe(was.db);
    expect(sqlite(rollback, 'PRAGMA journal_mode')).toBe('delete');
  });

  it('bad input: a readOnly that is not a boolean, and readOnly with options that write or lock others out, are WALNUT_INVALID_ARGUMENT naming the option', async () => {
    const file = await walDatabase();
    const before = fileAndWalSha256(file);
    for (const readOnly of ['yes', 1, null, {}]) await expectRejectsWalnut(open(file, { readOnly } as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'readOnly' });
    const writing: [string, unknown][] = [['keepWal', false], ['autoCheckpoint', 100], ['fec', { repairSymbols: 2 }], ['convert', true], ['lockingMode', 'exclusive'], ['shareLane', true]];
    for (const [name, value] of writing) {
      await expectRejectsWalnut(open(file, { readOnly: true, [name]: value }), 'WALNUT_INVALID_ARGUMENT', { reason: name });
    }
    // a bad value of such an option says what is wrong with it, not that it writes
    const e = await expectRejectsWalnut(open(file, { readOnly: true, keepWal: 'no' } as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'keepWal' });
    expect(e.message).toMatch(/must be a boolean/);
    // the ones that agree with it are taken
    const store = await open(file, { readOnly: true, keepWal: true, autoCheckpoint: false, convert: false, lockingMode: 'shared', shareLane: false, fec: false });
    await store.close();
    expect(fileAndWalSha256(file)).toEqual(before);
    // readOnly: false is the default
    const rw = await open(file, { readOnly: false, keepWal: true });
    expect(rw.options.readOnly).toBe(false);
    await rw.close();
  });
});
