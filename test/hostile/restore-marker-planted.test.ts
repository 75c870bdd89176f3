// Hostile: files of other kinds at the names of restore's marker (.app.db.restore-asides) and of
// its asides, as a user or another tool may leave them beside app.db.
// 1. A FIFO at the marker's name: walnut inspect and walnut verify opened it to read (O_RDONLY),
//    which waits for a writer: both hung for ever; a walnut open (walnut checkpoint) read it as an
//    empty marker and removed it. Now the marker is opened without waiting (O_NONBLOCK) and
//    read only when it is a regular file: inspect and verify report, the FIFO stays, a restore
//    is refused naming it (WALNUT_CANTOPEN, reason RestoreMarker).
// 2. A 512 MB file at the marker's name (sparse: walnut's first line, then zeros): every open,
//    inspect and verify of app.db read it whole into memory (a 3 GB one: 3.2 GB resident and
//    25 s per open). Now a file larger than any marker walnut writes is not read: the child that
//    opens, inspects and verifies app.db stays under 256 MB resident.
// 3. A symbolic link or a directory at the marker's name: a restore said "cannot create a file in
//    <dir> (ELOOP / EISDIR)" of a directory it can write; now it says the marker is not walnut's
//    (a symbolic link, a directory) and to move it away.
// 4. A marker entry whose temporary file is there and whose -journal aside is a symbolic link or
//    a directory (a restore moves aside regular files only): the open put it back as app.db-journal,
//    after which sqlite3 could not open app.db ("unable to open database file", "disk I/O error")
//    nor walnut (WALNUT_CANTOPEN). Now it is left where it is, for a person to look at; sqlite3
//    reads all 30 rows.
// 5. A marker entry that has to stay (its temporary file has a -journal of its own: someone
//    opened the dead restore's file with sqlite3) kept every later restore's entry with it, 13
//    bytes per restore for ever; past the size a marker may have (1 MB, since 2.) every restore
//    to app.db would be refused. Now a settle cuts the settled entries after the last one
//    needed: with 79,999 settled entries after the stuck one, three restores succeed and the
//    marker is back to its first line and the stuck entry.
// 6. A marker another user owns (a restore run as root died; 0644): a restore as another user
//    said "cannot create a file in <dir> (EACCES)" of a directory it can write. Now it names the
//    marker it cannot open for writing.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { asNobody, nobodySkip } from '../helpers/as-nobody';
import { spawnOutput } from '../helpers/children';
import { newDatabaseStream } from '../helpers/new-database-stream';
import { oldWalDatabase } from '../helpers/old-wal-database';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const dist = path.resolve(__dirname, '..', '..', 'dist');
/** A CLI verb; one that hangs is ended after a minute (its status then null). */
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args], { timeout: 60_000 });
const MARKER_LINE = 'walnut restore-asides 1\n';
const NOBODY_SKIP = nobodySkip();

const rows = (db: string): string => execFileSync('sqlite3', [db, "SELECT who || ':' || count(*) FROM t GROUP BY who; PRAGMA integrity_check"], { encoding: 'utf8' }).trim();

/** DIR/NAME/app.db, the old database (30 rows, 20 of them only in its -wal), and its marker's path. */
function oldDatabaseIn(name: string): { db: string; marker: string } {
  const d = path.join(dir, name);
  fs.mkdirSync(d);
  const db = path.join(d, 'app.db');
  oldWalDatabase(db);
  return { db, marker: path.join(d, '.app.db.restore-asides') };
}

describe('files of other kinds at the names a restore uses', () => {
  beforeAll(async () => {
    await newDatabaseStream(dir, true);
  });

  it('a FIFO at the marker: inspect and verify report without waiting on it, an open leaves it, a restore is refused', async () => {
    const { db, marker } = oldDatabaseIn('fifo');
    execFileSync('mkfifo', [marker]);
    const [inspected, verified] = await Promise.all([walnut('inspect', db, '--json'), walnut('verify', db, '--level', '1')]);
    expect(inspected.status, inspected.stderr).toBe(0); // (null: still waiting on the FIFO after a minute)
    expect(JSON.parse(inspected.stdout).restores).toEqual([]);
    expect(verified.status, verified.stderr).toBe(0);
    const opened = await walnut('checkpoint', db);
    expect(opened.status, opened.stderr).toBe(0);
    expect(fs.lstatSync(marker).isFIFO()).toBe(true); // not walnut's: not removed
    const restored = await walnut('restore', path.join(dir, 'new.ark'), db, '--force');
    expect(restored.status).toBe(2);
    expect(restored.stderr).toContain('WALNUT_CANTOPEN');
    expect(restored.stderr).toContain(`${marker} is not walnut's`);
    expect(rows(db)).toBe('old:30\nok');
  }, 180_000);

  it('a 512 MB file at the marker is not read: open, inspect and verify stay under 256 MB resident', async () => {
    const { db, marker } = oldDatabaseIn('large');
    fs.writeFileSync(marker, MARKER_LINE);
    fs.truncateSync(marker, 512 << 20);
    const script = `
const { open } = require(${JSON.stringify(path.join(dist, 'index.js'))});
const { inspect } = require(${JSON.stringify(path.join(dist, 'integrity', 'inspect.js'))});
const { verify } = require(${JSON.stringify(path.join(dist, 'integrity', 'verify.js'))});
(async () => {
  const store = await open(process.argv[1]);
  await store.close();
  const restores = inspect(process.argv[1]).restores.length;
  const ok = (await verify(process.argv[1], 1)).ok;
  // VmHWM: this process's own peak. Not resourceUsage().maxRSS, which kept the test runner's
  // peak across the fork and exec that started it (648 MB in a runner that had run other files)
  const hwm = Number(/VmHWM:\\s*(\\d+) kB/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))[1]);
  console.log(JSON.stringify({ restores, ok, maxRssMB: Math.round(hwm / 1024) }));
})();
`;
    const r = await spawnOutput(process.execPath, ['-e', script, db], { timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { restores: number; ok: boolean; maxRssMB: number };
    expect(report.restores).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.maxRssMB).toBeLessThan(256); // (read whole, each of the three: > 512)
    expect(fs.statSync(marker).size).toBe(512 << 20); // not walnut's: left as it is
    const restored = await walnut('restore', path.join(dir, 'new.ark'), db, '--force');
    expect(restored.status).toBe(2);
    expect(restored.stderr).toContain(`${marker} is not walnut's`);
    expect(rows(db)).toBe('old:30\nok');
  }, 180_000);

  it.each([
    ['a symbolic link', (marker: string) => fs.symlinkSync(path.join(path.dirname(marker), 'elsewhere'), marker)],
    ['a directory', (marker: string) => fs.mkdirSync(marker)],
  ])('%s at the marker: a restore says the marker is not walnut\'s, not that it cannot create a file', async (what, plant) => {
    const { db, marker } = oldDatabaseIn(what.replace(/ /g, '-'));
    plant(marker);
    const restored = await walnut('restore', path.join(dir, 'new.ark'), db, '--force');
    expect(restored.status).toBe(2);
    expect(restored.stderr).toContain(`WALNUT_CANTOPEN: cannot restore to ${db}: ${marker} is not walnut's (${what})`);
    expect(restored.stderr).not.toContain('cannot create a file');
    expect(rows(db)).toBe('old:30\nok');
  }, 60_000);

  it.each([
    ['a symbolic link', (aside: string) => fs.symlinkSync(path.join(dir, 'outside-journal'), aside)],
    ['a directory', (aside: string) => fs.mkdirSync(aside)],
  ])('a listed restore whose -journal aside is %s: an open leaves it aside, sqlite3 and walnut still open app.db', async (what, plant) => {
    const { db, marker } = oldDatabaseIn(`aside-${what.replace(/ /g, '-')}`);
    fs.writeFileSync(path.join(dir, 'outside-journal'), Buffer.alloc(4096, 0xd9));
    const tmp = path.join(path.dirname(db), '.app.db.restore-0123456789ab');
    fs.writeFileSync(marker, `${MARKER_LINE}0123456789ab\n`);
    fs.writeFileSync(tmp, 'the new database, not renamed in\n');
    plant(`${tmp}.aside-journal`);
    const opened = await walnut('checkpoint', db);
    expect(opened.status, opened.stderr).toBe(0);
    expect(fs.lstatSync(`${db}-journal`, { throwIfNoEntry: false })).toBeUndefined();
    expect(rows(db)).toBe('old:30\nok');
    expect(fs.lstatSync(`${tmp}.aside-journal`, { throwIfNoEntry: false })).toBeDefined(); // (left for a person, with its temporary file)
    expect(fs.existsSync(tmp)).toBe(true);
    const inspected = await walnut('inspect', db, '--json');
    expect(JSON.parse(inspected.stdout).restores.map((r: { temporary: string }) => r.temporary)).toEqual([tmp]);
  }, 60_000);

  it('an entry that stays does not keep the entries of later restores: the marker does not grow', async () => {
    const { db, marker } = oldDatabaseIn('stuck-entry');
    const tmp = path.join(path.dirname(db), '.app.db.restore-0123456789ab');
    fs.writeFileSync(tmp, 'a dead restore\'s file, opened with sqlite3\n');
    fs.writeFileSync(`${tmp}-journal`, 'its own journal\n');
    const settledEntries = Array.from({ length: 79_999 }, (_, i) => `${(0x100000000000 + i).toString(16)}\n`).join('');
    fs.writeFileSync(marker, `${MARKER_LINE}0123456789ab\n${settledEntries}`);
    for (let i = 0; i < 3; i++) {
      const restored = await walnut('restore', path.join(dir, 'new.ark'), db, '--force');
      expect(restored.status, `restore ${i + 1}: ${restored.stderr}`).toBe(0);
    }
    expect(rows(db)).toBe('new:7\nok');
    expect(fs.readFileSync(marker, 'utf8')).toBe(`${MARKER_LINE}0123456789ab\n`);
    expect(fs.existsSync(tmp) && fs.existsSync(`${tmp}-journal`)).toBe(true); // (left for a person)
  }, 120_000);

  it.skipIf(NOBODY_SKIP !== null)(`a marker another user owns: a restore names it, not the directory${NOBODY_SKIP === null ? '' : ` (${NOBODY_SKIP})`}`, async () => {
    fs.chmodSync(dir, 0o755); // (nobody reaches its directory, and the stream, through it)
    fs.chmodSync(path.join(dir, 'new.ark'), 0o644);
    const d = path.join(dir, 'theirs');
    fs.mkdirSync(d);
    fs.chownSync(d, 65534, 65534);
    const db = path.join(d, 'app.db');
    const made = await asNobody('restore', path.join(dir, 'new.ark'), db);
    expect(made.status, made.stderr).toBe(0);
    const marker = path.join(d, '.app.db.restore-asides');
    fs.writeFileSync(marker, MARKER_LINE, { mode: 0o644 }); // root's
    const r = await asNobody('restore', path.join(dir, 'new.ark'), db, '--force');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`WALNUT_CANTOPEN: cannot restore to ${db}: ${marker}, where a restore records its temporary files, cannot be opened for writing (EACCES)`);
    expect(r.stderr).not.toContain('cannot create a file');
  }, 60_000);
});
