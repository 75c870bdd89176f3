// Existing SQLite databases in rollback-journal mode (DELETE, TRUNCATE, PERSIST): open()
// converts them to WAL mode as PRAGMA journal_mode=WAL does (same header bytes as SQLite's own
// conversion), SQLite connections opened before keep working, `convert: false`, a hot journal
// and a SQLite reader or writer refuse without changing a byte, and verify reports the journal
// mode as information.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { inspect } from '../../lib/integrity/inspect';
import { verify } from '../../lib/integrity/verify';
import { DB_HEADER_SIZE, decodeDbHeader } from '../../lib/format/db-header';
import { spawnOutput, SqlitePeer } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { Database } from '../helpers/sqlite';
import { sqliteIntegrity } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const hash = (f: string) => (fs.existsSync(f) ? createHash('sha256').update(fs.readFileSync(f)).digest('hex') : null);
const files = (db: string) => ['', '-journal', '-wal', '-shm'].map((s) => hash(db + s));
const hasSqliteCli = spawnSync('sqlite3', ['-version'], { stdio: 'ignore' }).status === 0;
let n = 0;

/** A rollback-journal database SQLite built: a table of 60 rows (some with overflow pages) and an index. */
function rollbackDb(journalMode: 'DELETE' | 'TRUNCATE' | 'PERSIST' = 'DELETE'): string {
  const file = path.join(dir, `r${n++}.db`);
  const db = new Database(file);
  db.pragma('page_size = 1024');
  db.pragma(`journal_mode = ${journalMode}`);
  db.pragma('synchronous = OFF'); // the same bytes, without 60 commits' fsyncs (seconds of a blocked event loop on a loaded disk)
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); CREATE INDEX t_v ON t(v)');
  const ins = db.prepare('INSERT INTO t(v) VALUES (?)');
  for (let i = 0; i < 60; i++) db.transaction(() => ins.run(Buffer.alloc(i % 10 === 0 ? 3000 : 40 + i, i)))();
  db.close();
  return file;
}

function rows(file: string): unknown[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT id, hex(v) AS v FROM t ORDER BY id').all();
  } finally {
    db.close();
  }
}

/** A better-sqlite3 connection `db` to `file` in another process running `script`, which writes 'ready' to stdout once it is under way. */
async function sqliteChild(file: string, script: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', `const db = new (require('better-sqlite3'))(process.argv[1]);${script}`, file], { cwd: path.resolve(__dirname, '..', '..'), stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => String(d).includes('ready') && resolve());
    child.on('exit', (code) => reject(new Error(`sqlite child exited early (${code})`)));
  });
  return child;
}

/** Page 1 as the store sees it, with `user_version` (header offset 60) set: a change SQLite can read. */
async function withUserVersion(store: Awaited<ReturnType<typeof open>>, version: number): Promise<Buffer> {
  const snap = await store.snapshot();
  try {
    const page1 = Buffer.from(await snap.read(1));
    page1.writeUInt32BE(version, 60);
    return page1;
  } finally {
    snap.release();
  }
}

/** `opening` (an open() of `file`) converts it: `peer` then counts `count` rows in WAL mode; closed, SQLite's integrity_check says ok. */
async function expectConvertedUnder(peer: SqlitePeer, file: string, opening: ReturnType<typeof open>, count: number): Promise<void> {
  const store = await opening;
  expect((await peer.get<{ c: number }>('SELECT count(*) AS c FROM t')).c).toBe(count);
  expect(await peer.pragma('journal_mode')).toBe('wal'); // (reported once a read found page 1 saying so)
  await peer.close();
  await store.close();
  expect(sqliteIntegrity(file)).toEqual(['ok']);
}

describe('open() converts a rollback-journal database to WAL mode', () => {
  it('writes the same header bytes as SQLite\'s PRAGMA journal_mode=WAL; an idle SQLite connection opened before reads and writes on', async () => {
    const file = rollbackDb();
    const before = rows(file);
    const bySqlite = path.join(dir, 'by-sqlite.db');
    fs.copyFileSync(file, bySqlite);
    const s = new Database(bySqlite);
    expect(s.pragma('journal_mode = WAL', { simple: true })).toBe('wal');
    s.close();

    const peer = new SqlitePeer(file); // a rollback-mode connection with the pages in its cache
    expect(await peer.pragma('journal_mode')).toBe('delete');
    expect((await peer.get<{ c: number }>('SELECT count(*) AS c FROM t')).c).toBe(60);

    const store = await open(file, { keepWal: true });
    const converted = fs.readFileSync(file);
    const sqliteMade = fs.readFileSync(bySqlite);
    expect(converted.length).toBe(sqliteMade.length);
    // every byte as SQLite's conversion leaves it, but 96..99 (SQLite writes its own version number there; walnut no version)
    converted.copy(sqliteMade, 96, 96, 100);
    expect(converted.equals(sqliteMade)).toBe(true);
    expect(decodeDbHeader(converted)).toMatchObject({ writeVersion: 2, readVersion: 2 });

    await store.commit([{ pgno: 1, data: await withUserVersion(store, 42) }]);
    // the connection opened before the conversion: sees WAL mode, walnut's commit, and writes
    expect(await peer.pragma('user_version')).toBe(42);
    expect(await peer.pragma('journal_mode')).toBe('wal');
    expect(await peer.all('SELECT id, hex(v) AS v FROM t ORDER BY id')).toEqual(before);
    await peer.exec("INSERT INTO t(v) VALUES (x'abcdef')");
    expect(await peer.pragma('integrity_check')).toBe('ok');
    await peer.close();
    await store.close();
    expect(sqliteIntegrity(file)).toEqual(['ok']);
    expect(rows(file)).toEqual([...before, { id: 61, v: 'ABCDEF' }]);
  });

  it.each(['TRUNCATE', 'PERSIST'] as const)('a %s-mode database with its leftover (not hot) journal converts', async (mode) => {
    const file = rollbackDb(mode);
    const journal = fs.readFileSync(`${file}-journal`);
    if (mode === 'TRUNCATE') expect(journal.length).toBe(0);
    else expect(journal.length > 0 && journal.subarray(0, 28).every((b) => b === 0)).toBe(true); // zeroed header
    const before = rows(file);
    const store = await open(file);
    await store.commit([{ pgno: 1, data: await withUserVersion(store, 7) }]);
    await store.close();
    const db = new Database(file);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(7);
    db.close();
    expect(sqliteIntegrity(file)).toEqual(['ok']);
    expect(rows(file)).toEqual(before);
  });

  it('an in-header size SQLite does not trust is set from the file, as SQLite does; lockingMode exclusive converts too', async () => {
    const file = rollbackDb();
    const bytes = fs.readFileSync(file);
    bytes.writeUInt32BE(bytes.readUInt32BE(24) + 5, 92); // version-valid-for != change counter
    bytes.writeUInt32BE(3, 28); // a stale size
    fs.writeFileSync(file, bytes);
    const bySqlite = path.join(dir, 'by-sqlite-untrusted.db');
    fs.copyFileSync(file, bySqlite);
    const s = new Database(bySqlite);
    s.pragma('journal_mode = WAL');
    s.close();
    const store = await open(file, { lockingMode: 'exclusive' });
    await store.close();
    const ours = fs.readFileSync(file).subarray(0, 96);
    const theirs = fs.readFileSync(bySqlite).subarray(0, 96);
    expect(ours.equals(theirs)).toBe(true);
    expect(ours.readUInt32BE(28)).toBe(bytes.length / 1024);
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('an empty file (what better-sqlite3 and python create before the first table) becomes an empty WAL-mode database, as PRAGMA journal_mode=WAL makes it; a stale -wal beside it is dropped as SQLite drops it', async () => {
    const emptyFile = () => {
      const file = path.join(dir, `empty${n++}.db`);
      new Database(file).close();
      expect(fs.statSync(file).size).toBe(0);
      return file;
    };
    const file = emptyFile();
    // a -wal of another database, left over: SQLite deletes a -wal beside an empty database file
    const other = rollbackDb();
    const stale = await open(other, { keepWal: true });
    await stale.commit([{ pgno: 1, data: await withUserVersion(stale, 9) }]);
    await stale.close();
    fs.copyFileSync(`${other}-wal`, `${file}-wal`);

    const store = await open(file, { pageSize: 1024 });
    expect(decodeDbHeader(await withUserVersion(store, 0))).toMatchObject({ pageSize: 1024, writeVersion: 2, readVersion: 2 });
    await store.close();
    const db = new Database(file);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(0); // nothing of the stale -wal
    db.exec('CREATE TABLE t(x)');
    db.close();
    expect(sqliteIntegrity(file)).toEqual(['ok']);

    // convert: false, or a journal with content beside it: refused, the file stays empty
    const refused = emptyFile();
    await expectRejectsWalnut(open(refused, { convert: false }), 'WALNUT_CANTOPEN');
    fs.writeFileSync(`${refused}-journal`, Buffer.from('d9d505f920a163d7', 'hex'));
    await expectRejectsWalnut(open(refused), 'WALNUT_CANTOPEN', { reason: 'HotJournal' });
    expect(fs.statSync(refused).size).toBe(0);
  });

  it('convert: false refuses with WALNUT_CANTOPEN (NotWalMode) and changes no byte', async () => {
    const file = rollbackDb();
    const before = files(file);
    await expectRejectsWalnut(open(file, { convert: false }), 'WALNUT_CANTOPEN', { reason: 'NotWalMode' });
    expect(files(file)).toEqual(before);
    await expectRejectsWalnut(open(file, { convert: 'yes' as unknown as boolean }), 'WALNUT_INVALID_ARGUMENT', { reason: 'convert' });
  });

  it('format versions SQLite does not know are refused (WALNUT_CANTOPEN), and verify names them', async () => {
    const file = rollbackDb();
    const bytes = fs.readFileSync(file);
    bytes[18] = 3;
    bytes[19] = 3;
    fs.writeFileSync(file, bytes);
    await expectRejectsWalnut(open(file), 'WALNUT_CANTOPEN', { reason: 'UnsupportedFileFormat' });
    expect(fs.readFileSync(file).equals(bytes)).toBe(true);
    const r = await verify(file, 1);
    expect(r).toMatchObject({ ok: false, journalMode: null, issues: [expect.objectContaining({ kind: 'file-format', pgno: 1 })] });
  });
});

describe('what makes the conversion wait or refuse', () => {
  it('a hot journal: refused (HotJournal), nothing touched, verify says so; once sqlite3 rolled it back, open converts', async () => {
    const file = rollbackDb();
    const before = rows(file);
    const original = fs.readFileSync(file);
    // a SQLite writer that spills a big transaction into the database file, killed mid-transaction
    const writer = await sqliteChild(file, `
      db.pragma('cache_size = 2');
      db.exec('BEGIN');
      db.exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) INSERT INTO t(v) SELECT randomblob(900) FROM n");
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1000);`);
    writer.removeAllListeners('exit');
    const killed = new Promise((resolve) => writer.on('exit', resolve));
    writer.kill('SIGKILL');
    await killed;
    expect(fs.statSync(file).size).toBeGreaterThan(original.length); // the spill reached the file
    const hot = files(file);

    const err = await expectRejectsWalnut(open(file), 'WALNUT_CANTOPEN', { reason: 'HotJournal' });
    expect(err.message).toMatch(/hot rollback journal.*open the database once with sqlite3/);
    await expectRejectsWalnut(open(file, { convert: false }), 'WALNUT_CANTOPEN', { reason: 'HotJournal' });
    expect(files(file)).toEqual(hot);
    const r = await verify(file, 5);
    expect(r.ok).toBe(false);
    expect(r.issues).toContainEqual(expect.objectContaining({ level: 1, kind: 'hot-journal' }));

    // the advice in the message: sqlite3 rolls the journal back
    if (hasSqliteCli) execFileSync('sqlite3', [file, 'PRAGMA schema_version'], { stdio: 'ignore' });
    else new Database(file).pragma('schema_version');
    expect(fs.readFileSync(file).equals(original)).toBe(true);
    const store = await open(file);
    await store.close();
    expect(rows(file)).toEqual(before);
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('a hot journal beside a WAL-mode database is refused too (SQLite would roll it back under walnut); sqlite3 clears it, then open works', async () => {
    const file = rollbackDb();
    const s = new Database(file);
    s.pragma('journal_mode = WAL');
    s.close();
    const journal = Buffer.alloc(512);
    Buffer.from('d9d505f920a163d7', 'hex').copy(journal); // a journal header (no page records)
    fs.writeFileSync(`${file}-journal`, journal);
    const before = files(file);
    await expectRejectsWalnut(open(file), 'WALNUT_CANTOPEN', { reason: 'HotJournal' });
    expect(files(file)).toEqual(before);
    const sq = new Database(file);
    sq.pragma('schema_version'); // the first read: SQLite plays back nothing and deletes the journal
    sq.close();
    expect(fs.existsSync(`${file}-journal`)).toBe(false);
    const store = await open(file);
    await store.close();
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('a SQLite reader (SHARED) or writer (RESERVED) in another process: WALNUT_BUSY after busyTimeout, nothing changed; then it converts', async () => {
    const file = rollbackDb();
    const peer = new SqlitePeer(file);
    await peer.exec('BEGIN');
    expect((await peer.get<{ c: number }>('SELECT count(*) AS c FROM t')).c).toBe(60); // holds SHARED
    const before = files(file);
    await expectRejectsWalnut(open(file, { busyTimeout: 100 }), 'WALNUT_BUSY');
    expect(files(file)).toEqual(before);
    // the reader was never disturbed and can still write (nothing of ours is left holding PENDING)
    await peer.exec("INSERT INTO t(v) VALUES ('during'); COMMIT");
    await peer.exec('BEGIN IMMEDIATE'); // RESERVED
    const during = files(file);
    await expectRejectsWalnut(open(file, { busyTimeout: 100 }), 'WALNUT_BUSY');
    expect(files(file)).toEqual(during);
    await peer.exec('COMMIT');
    await expectConvertedUnder(peer, file, open(file), 61);
  });
});

describe('converters and writers at the same time', () => {
  it('a SQLite writer rolling transactions back (its journal created and deleted) never makes open() see a hot journal', async () => {
    const file = rollbackDb();
    const writer = await sqliteChild(file, `
      const change = db.prepare('UPDATE t SET v = randomblob(40) WHERE id = 1');
      process.stdout.write('ready\\n');
      for (;;) { db.exec('BEGIN IMMEDIATE'); change.run(); db.exec('ROLLBACK'); }`);
    try {
      // each attempt checks the journal while the writer creates and deletes it; a journal that
      // vanishes between the look and the read was deleted by its writer and is not hot
      const seen: Record<string, number> = {};
      for (const until = Date.now() + 2000; Date.now() < until; ) {
        const err = await expectRejectsWalnut(open(file, { convert: false }), 'WALNUT_CANTOPEN');
        seen[err.reason!] = (seen[err.reason!] ?? 0) + 1;
      }
      expect(Object.keys(seen)).toEqual(['NotWalMode']);
    } finally {
      writer.kill('SIGKILL');
    }
  });


  it('two connections open the same rollback-journal database at once: both succeed, one converts', async () => {
    const file = rollbackDb();
    const before = rows(file);
    const counter = fs.readFileSync(file).readUInt32BE(24);
    // a long busy timeout: if the two waited for each other, one would fail only after it
    const stores = await Promise.all([open(file, { busyTimeout: 20_000 }), open(file, { busyTimeout: 20_000 })]);
    expect(fs.readFileSync(file).readUInt32BE(24)).toBe(counter + 1); // converted once
    await stores[0]!.commit([{ pgno: 1, data: await withUserVersion(stores[0]!, 5) }]);
    const snap = await stores[1]!.snapshot();
    expect((await snap.read(1)).readUInt32BE(60)).toBe(5);
    snap.release();
    await Promise.all(stores.map((s) => s.close()));
    expect(rows(file)).toEqual(before);
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('a SQLite write transaction open when walnut arrives commits, then walnut converts (walnut waits without its SHARED lock)', async () => {
    const file = rollbackDb();
    const peer = new SqlitePeer(file); // busy_timeout 5000
    await peer.exec("BEGIN IMMEDIATE; INSERT INTO t(v) VALUES ('first')"); // RESERVED
    const opening = open(file, { busyTimeout: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 50)); // (walnut is waiting for RESERVED; not needed for the outcome)
    await peer.exec('COMMIT'); // needs EXCLUSIVE: would wait for walnut's SHARED if walnut kept it
    await expectConvertedUnder(peer, file, opening, 61);
  });
});

describe('verify on a rollback-journal database', () => {
  it('checks every level, reports the mode as information, exit 0 (API and CLI), and changes nothing', async () => {
    const file = rollbackDb();
    const before = files(file);
    const r = await verify(file, 5);
    expect(r).toEqual({ ok: true, level: 5, journalMode: 'rollback', pages: fs.statSync(file).size / 1024, issues: [] });
    const cli = await spawnOutput(process.execPath, [bin, 'verify', file, '--level', '5', '--json']);
    expect(cli.status).toBe(0);
    expect(JSON.parse(cli.stdout)).toEqual(r);
    const text = await spawnOutput(process.execPath, [bin, 'verify', file]);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^journalMode\s+rollback$/m);
    expect(files(file)).toEqual(before);
    // damage is still found in rollback mode: a b-tree page of the wrong type
    const bytes = fs.readFileSync(file);
    bytes[DB_HEADER_SIZE] = 0x07; // page 1's b-tree page type
    fs.writeFileSync(file, bytes);
    const bad = await spawnOutput(process.execPath, [bin, 'verify', file, '--json']);
    expect(bad.status).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, journalMode: 'rollback' });
  });
});

describe('journals that are not plain files, and databases walnut may not write', () => {
  it('a -journal that is a directory or a FIFO: WALNUT_CANTOPEN (HotJournal), never a raw error or a hang; inspect and verify report it', async () => {
    for (const make of [(j: string) => fs.mkdirSync(j), (j: string) => execFileSync('mkfifo', [j])]) {
      const file = rollbackDb();
      make(`${file}-journal`);
      const before = hash(file);
      const err = await expectRejectsWalnut(open(file), 'WALNUT_CANTOPEN', { reason: 'HotJournal' });
      expect(err.message).toMatch(/not a regular file/);
      expect(hash(file)).toBe(before);
      const r = await verify(file, 1);
      expect(r.issues).toContainEqual(expect.objectContaining({ kind: 'hot-journal', message: err.message.replace(/^WALNUT_CANTOPEN: /, '') }));
      expect(inspect(file)).toMatchObject({ journalMode: 'rollback', hotJournal: true });
    }
  });

  it('a database in a directory walnut cannot write to (no -wal/-shm possible): WALNUT_READONLY before anything changes; a read-only file too', async () => {
    // as another user when running as root (root writes anywhere)
    const user = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const base = path.join(dir, 'ro');
    fs.mkdirSync(base, { mode: 0o755 });
    fs.chmodSync(dir, 0o755);
    // The child loads walnut first and only then becomes that user: the checkout itself may sit
    // where the other user cannot read (a fresh clone in a 0700 temporary directory).
    const tryOpen = async (file: string) => {
      const child = await spawnOutput(process.execPath, ['-e', `
        const walnut = require(process.argv[1]);
        const id = Number(process.argv[3]);
        if (id >= 0) { process.setgid(id); process.setuid(id); }
        walnut.open(process.argv[2]).then(
          (s) => s.close().then(() => console.log('{"opened":true}')),
          (e) => console.log(JSON.stringify({ code: e.code, reason: e.reason, name: e.name })));`, path.resolve(__dirname, '..', '..', 'dist', 'index.js'), file, String(user.uid ?? -1)]);
      expect(child.stderr).toBe('');
      return JSON.parse(child.stdout);
    };
    const roDir = path.join(base, 'dir');
    fs.mkdirSync(roDir);
    const inRoDir = path.join(roDir, 'a.db');
    fs.renameSync(rollbackDb(), inRoDir);
    const roFile = path.join(base, 'ro-file.db');
    fs.renameSync(rollbackDb(), roFile);
    if (user.uid !== undefined) for (const f of [roDir, inRoDir, base]) fs.chownSync(f, user.uid, user.gid);
    fs.chmodSync(roDir, 0o555);
    fs.chmodSync(roFile, 0o444);
    try {
      for (const file of [inRoDir, roFile]) {
        const before = fs.readFileSync(file);
        const result = await tryOpen(file);
        expect(fs.readFileSync(file).equals(before)).toBe(true); // still in rollback mode: SQLite and walnut can use it
        expect(result).toMatchObject({ code: 'WALNUT_READONLY', name: 'WalnutError' });
        expect(fs.readdirSync(path.dirname(file)).filter((f) => f.startsWith(path.basename(file)))).toEqual([path.basename(file)]);
      }
      // the -wal and -shm there already, writable: it converts, and close() (the last connection,
      // which cannot remove them) leaves them as SQLite does instead of failing
      for (const suffix of ['-wal', '-shm']) {
        fs.chmodSync(roDir, 0o755);
        fs.writeFileSync(inRoDir + suffix, '');
        if (user.uid !== undefined) fs.chownSync(inRoDir + suffix, user.uid, user.gid);
        fs.chmodSync(roDir, 0o555);
      }
      expect(await tryOpen(inRoDir)).toEqual({ opened: true });
    } finally {
      fs.chmodSync(roDir, 0o755);
    }
    expect(sqliteIntegrity(inRoDir)).toEqual(['ok']);
    expect(rows(inRoDir).length).toBe(60);
  });
});
