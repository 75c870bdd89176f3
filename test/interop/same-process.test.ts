// Same-process neighbours (issue #23): better-sqlite3 in THIS process beside walnut, on the same
// database. SQLite's classic POSIX locks belong to the process and all go when the process
// closes any descriptor of the file, so walnut must never close one while they are held
// (native/fd_registry.h). The third party that notices lost locks is the sqlite3 command in
// another process: its TRUNCATE checkpoint must stay busy while a reader here holds a read
// mark, and its BEGIN IMMEDIATE must stay locked out while a writer here holds WRITE.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { describe, expect, it, vi } from 'vitest';

import { open } from '../../lib/commit/store';
import { createExportStream } from '../../lib/export/stream';
import { inspect } from '../../lib/integrity/inspect';
import { verify } from '../../lib/integrity/verify';
import { WalnutFile } from '../../lib/io/file';
import { NativeFile } from '../../lib/native';
import { WalIndex } from '../../lib/wal-index/wal-index';
import { SqlitePeer } from '../helpers/children';
import { commitsToUserVersion } from '../helpers/commit';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;

/** A WAL database with rows still in the WAL, and a better-sqlite3 connection to it in this process. */
function neighbour(): { file: string; db: Database.Database } {
  const file = path.join(dir, `neighbour${n++}.db`);
  const db = new Database(file, { timeout: 0 });
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  const insert = db.prepare('INSERT INTO t(v) VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < 50; i++) insert.run(`row ${i}`);
  })();
  return { file, db };
}

/** sqlite3 in another process, busy timeout 0. */
const sqlite3 = (file: string, sql: string) => spawnSync('sqlite3', [file, sql], { encoding: 'utf8' });

/** The busy column of another process's PRAGMA wal_checkpoint(TRUNCATE). */
function otherProcessTruncateBusy(file: string): number {
  const r = sqlite3(file, 'PRAGMA wal_checkpoint(TRUNCATE);');
  expect(r.status, r.stderr).toBe(0);
  return Number(r.stdout.trim().split('|')[0]);
}

/** Whether another process can take SQLite's write lock right now. */
function otherProcessCanWrite(file: string): boolean {
  const r = sqlite3(file, 'BEGIN IMMEDIATE; ROLLBACK;');
  if (r.status === 0) return true;
  expect(r.stderr).toMatch(/database is locked/);
  return false;
}

/** This process's descriptors of the database and its companions. */
function openFds(file: string): number {
  return fs.readdirSync('/proc/self/fd').filter((d) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${d}`).startsWith(file);
    } catch {
      return false; // the directory's own descriptor, gone by now
    }
  }).length;
}

async function drain(stream: NodeJS.ReadableStream): Promise<number> {
  let bytes = 0;
  for await (const chunk of stream) bytes += (chunk as Buffer).length;
  return bytes;
}

/** walnut work done in this process while better-sqlite3 holds its locks. */
const walnutWork: [string, (file: string) => Promise<unknown>][] = [
  ['open(keepWal), snapshot, close', async (file) => {
    const store = await open(file, { keepWal: true });
    (await store.snapshot()).release();
    await store.close();
  }],
  ['open, commit-free close (not the last connection: no cleanup)', async (file) => (await open(file)).close()],
  ['a passive checkpoint', async (file) => {
    const store = await open(file, { keepWal: true });
    await store.checkpoint('passive');
    await store.close();
  }],
  ['inspect', async (file) => inspect(file)],
  ['an export', async (file) => expect(await drain(createExportStream(file))).toBeGreaterThan(0)],
];

/** A store opened, read and closed in a worker thread (its own addon instance; the locks are the process's). */
function storeInWorker(file: string): Promise<void> {
  const body = `const { workerData, parentPort } = require('node:worker_threads');
    const { open } = require(workerData.dist);
    (async () => {
      const store = await open(workerData.file, { keepWal: true });
      (await store.snapshot()).release();
      await store.close();
    })().then(() => parentPort.postMessage('done'), (e) => parentPort.postMessage(String(e)));`;
  const worker = new Worker(body, { eval: true, workerData: { file, dist: path.join(__dirname, '../../dist/index.js') } });
  let outcome = 'no message';
  worker.on('message', (m) => (outcome = m));
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', () => (outcome === 'done' ? resolve() : reject(new Error(outcome))));
  });
}

describe("better-sqlite3's read transaction in this process survives walnut", () => {
  const alsoForReaders: typeof walnutWork = [
    ['verify', async (file) => expect((await verify(file, 3)).ok).toBe(true)],
    ['a store in a worker thread', storeInWorker],
  ];
  for (const [name, work] of walnutWork.concat(alsoForReaders)) {
    it(`${name}: another process's TRUNCATE checkpoint stays busy`, async () => {
      const { file, db } = neighbour();
      db.exec('BEGIN');
      expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 50 }); // holds a read mark
      expect(otherProcessTruncateBusy(file)).toBe(1);
      await work(file);
      await work(file);
      // before: 0 — the WAL was reset under the open read transaction
      expect(otherProcessTruncateBusy(file)).toBe(1);
      expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 50 });
      db.exec('COMMIT');
      expect(otherProcessTruncateBusy(file)).toBe(0);
      db.close();
    });
  }
});

describe("better-sqlite3's write transaction in this process survives walnut", () => {
  for (const [name, work] of walnutWork) {
    it(`${name}: another process still cannot begin writing; the transaction commits`, async () => {
      const { file, db } = neighbour();
      db.exec('BEGIN IMMEDIATE');
      db.prepare("INSERT INTO t(v) VALUES ('written while walnut worked')").run();
      expect(otherProcessCanWrite(file)).toBe(false);
      await work(file);
      // before: true — two writers at once
      expect(otherProcessCanWrite(file)).toBe(false);
      db.exec('COMMIT');
      expect(otherProcessCanWrite(file)).toBe(true);
      expect(sqlite3(file, 'PRAGMA integrity_check; SELECT count(*) FROM t;').stdout).toBe('ok\n51\n');
      db.close();
    });
  }
});

describe('a lock of this process under the same bytes as another process\'s', () => {
  it("is still found: every SQLite connection takes the same SHARED range of the database", async () => {
    const { file, db } = neighbour();
    db.close();
    const peer = new SqlitePeer(file); // first: its locks come first in the kernel's list
    expect(await peer.get('SELECT count(*) AS n FROM t')).toEqual({ n: 50 });
    const here = new Database(file, { timeout: 0 });
    here.exec('BEGIN');
    expect(here.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 50 });
    await walnutWork[0]![1](file);
    expect(openFds(file)).toBeGreaterThan(1); // here's own, and walnut's parked ones
    await peer.close();
    // here's SHARED lock on the database keeps another process from leaving WAL mode
    // (before: the close of walnut's database descriptor had dropped it)
    const r = sqlite3(file, 'PRAGMA journal_mode = DELETE;');
    expect(r.stderr).toMatch(/database is locked/);
    expect(here.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 50 });
    here.exec('COMMIT');
    here.close();
  });

  it("another process's locks alone keep nothing open", async () => {
    const { file, db } = neighbour();
    db.close();
    const peer = new SqlitePeer(file);
    await peer.exec('BEGIN');
    expect(await peer.get('SELECT count(*) AS n FROM t')).toEqual({ n: 50 });
    await walnutWork[0]![1](file);
    expect(inspect(file).locks.length).toBeGreaterThan(0);
    expect(openFds(file)).toBe(0);
    await peer.close();
  });
});

describe("walnut's locks survive better-sqlite3 connections opening and closing in this process", () => {
  it('a read mark and the write lock stay held', async () => {
    const { file, db } = neighbour();
    db.close(); // (the last connection: checkpoints and removes the WAL)
    const index = await WalIndex.open(file);
    const snap = await index.beginRead();
    await index.beginWrite(snap);
    const churn = () => {
      for (let i = 0; i < 3; i++) {
        const other = new Database(file, { timeout: 0 });
        expect(other.prepare('SELECT count(*) AS n FROM t').get()).toHaveProperty('n');
        other.close();
      }
    };
    churn();
    expect(otherProcessCanWrite(file)).toBe(false); // walnut's WRITE
    index.endWrite();
    expect(otherProcessCanWrite(file)).toBe(true);
    const writer = new Database(file, { timeout: 0 });
    writer.prepare("INSERT INTO t(v) VALUES ('after walnut wrote nothing')").run(); // frames for the read mark to pin
    churn();
    expect(otherProcessTruncateBusy(file)).toBe(1); // walnut's read mark
    snap.release();
    expect(otherProcessTruncateBusy(file)).toBe(0);
    writer.close();
    await index.close();
  });
});

describe('descriptors kept open for better-sqlite3', () => {
  it('are reused by the next open (never shared by two live owners) and closed once its locks are gone', async () => {
    const { file, db } = neighbour();
    const parkedBefore = NativeFile.sweepPendingCloses(); // what earlier tests left is closed now (their connections are)
    const first = WalnutFile.openSync(file);
    const fd = first.fd;
    first.closeSync();
    expect(WalnutFile.pendingCloses()).toBe(parkedBefore + 1); // better-sqlite3 holds SHARED on the database
    const reused = WalnutFile.openSync(file);
    expect(reused.fd).toBe(fd); // the parked descriptor (still open, so no fresh open could get its number)
    expect(WalnutFile.pendingCloses()).toBe(parkedBefore);
    const fresh = WalnutFile.openSync(file);
    expect(fresh.fd).not.toBe(fd);
    // two owners, two open file descriptions: their OFD locks still exclude each other
    expect(reused.tryLock(200, 1, 'exclusive')).toBe(true);
    expect(fresh.tryLock(200, 1, 'exclusive')).toBe(false);
    reused.closeSync(); // its lock goes with the close, though the descriptor stays parked
    expect(fresh.tryLock(200, 1, 'exclusive')).toBe(true);
    fresh.closeSync();

    // stores opened and closed again and again keep no more parked than one store holds at once
    const cycle = async () => (await open(file, { keepWal: true })).close();
    await cycle();
    const fdsAfterOne = openFds(file);
    for (let i = 0; i < 10; i++) await cycle();
    expect(openFds(file)).toBe(fdsAfterOne);

    db.close();
    // no open or close from here on: the unref'd timer closes them (it checks every second)
    await vi.waitFor(() => expect(WalnutFile.pendingCloses()).toBe(parkedBefore), { timeout: 15_000, interval: 100 });
    expect(openFds(file)).toBe(0);
  });
});

describe('soak: better-sqlite3 and walnut commit in one process while python3 writes from another', () => {
  it('integrity ok; every acknowledged commit of all three is there', async () => {
    const { file, db } = neighbour();
    db.pragma('busy_timeout = 20'); // a wait here blocks the event loop, and so the walnut commit it waits for
    db.exec('CREATE TABLE p(id INTEGER PRIMARY KEY, n INTEGER)');
    const seconds = 3;
    const python = spawn('python3', ['-c', `
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
end = time.time() + float(sys.argv[2])
n = 0
while time.time() < end:
    n += 1
    con.execute('INSERT INTO p(n) VALUES (?)', (n,))
    print(n, flush=True)
    time.sleep(0.002)
con.close()
`, file, String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let pythonOut = '';
    python.stdout.on('data', (d) => (pythonOut += d));
    const pythonDone = new Promise<number | null>((resolve) => python.on('close', resolve));

    let stop = false;
    const sqliteAcked: number[] = [];
    const insert = db.prepare('INSERT INTO t(v) VALUES (?)');
    const sqliteLoop = (async () => {
      for (let i = 0; !stop; i++) {
        try {
          sqliteAcked.push(Number(insert.run(`in-process ${i}`).lastInsertRowid));
        } catch (e) {
          if ((e as { code?: string }).code !== 'SQLITE_BUSY') throw e;
        }
        await sleep(2);
      }
    })();

    // walnut: page 1's user_version counts its commits (a read-modify-write of page 1)
    const store = await open(file, { keepWal: true });
    let walnutAcked = 0;
    const walnutLoop = commitsToUserVersion(store, () => stop).then((n) => (walnutAcked = n));
    // and stores, inspections and checkpoints coming and going
    let churned = 0;
    const churnLoop = (async () => {
      while (!stop) {
        await walnutWork[churned++ % walnutWork.length]![1](file);
      }
    })();

    expect(await pythonDone).toBe(0);
    stop = true;
    await Promise.all([sqliteLoop, walnutLoop, churnLoop]);
    await store.close();
    db.close();

    const pythonAcked = pythonOut.trim().split('\n').map(Number);
    expect(pythonAcked.length).toBeGreaterThan(0); // (how many depends on the machine: every one is checked below)
    expect(sqliteAcked.length).toBeGreaterThan(0);
    expect(walnutAcked).toBeGreaterThan(0);
    expect(churned).toBeGreaterThan(walnutWork.length);
    const check = sqlite3(file, 'PRAGMA integrity_check; PRAGMA user_version; SELECT group_concat(id) FROM t; SELECT group_concat(n) FROM p;');
    const [integrity, userVersion, tIds, pNs] = check.stdout.trim().split('\n');
    expect(integrity).toBe('ok');
    expect(Number(userVersion)).toBe(walnutAcked);
    const ids = new Set(tIds!.split(',').map(Number));
    expect(sqliteAcked.filter((id) => !ids.has(id))).toEqual([]);
    expect(pNs!.split(',').map(Number)).toEqual(pythonAcked);
  });
});
