// Hostile: what a walnut open of app.db did to find and settle killed restores.
// 1. Every open listed app.db's directory to find a restore's asides (io/restore-asides.ts):
//    28 ms beside a few files, 265 ms beside 100,000, on every open of every store. Now a restore
//    records its temporary files in a marker of a fixed name (.app.db.restore-asides), durably
//    before any of them exists, and an open only looks for that name: traced with strace, an open
//    (walnut checkpoint) reads no directory (getdents64 on it), neither beside nothing of a
//    restore nor after a restore killed before its rename, which it still settles (the old
//    database whole, nothing of the restore left).
// 2. An open (and a restore) removed another tool's file named exactly .app.db.restore-<12 hex>
//    (not empty, or older than a minute, no companions): it took it for a dead restore's
//    temporary file. Now only names the marker lists are touched: the file stays, byte for byte.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { buildCrashAtRenameShim } from '../helpers/crash-at-rename-shim';
import { newDatabaseStream } from '../helpers/new-database-stream';
import { tmpDir } from '../helpers/tmp';
import { oldWalDatabase } from '../helpers/old-wal-database';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);
const shim = buildCrashAtRenameShim(dir);
const strace = spawnSync('strace', ['-qq', '-e', 'trace=getdents64', 'true']).status === 0 ? null : 'strace cannot trace here';

/** The old database: 10 rows in the file, 20 commits only in its -wal (python3's sqlite3, ended without closing). */
const oldDatabase = oldWalDatabase;

const rows = (db: string): string => execFileSync('sqlite3', [db, "SELECT who || ':' || count(*) FROM t GROUP BY who; PRAGMA integrity_check"], { encoding: 'utf8' }).trim();

/**
 * `walnut checkpoint db` under strace: how many times a process of it read the directory of
 * `db` (getdents64 on a descriptor opened on that directory).
 */
function directoryReadsOfOpen(db: string): { status: number | null; reads: number; stderr: string } {
  const log = path.join(dir, `strace-${Date.now()}.log`);
  const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=openat,getdents64,close', '-o', log, process.execPath, bin, 'checkpoint', db], { encoding: 'utf8' });
  const target = path.dirname(fs.realpathSync(db));
  const open = new Set<string>(); // `${pid}:${fd}` opened on the directory
  let reads = 0;
  for (const line of fs.readFileSync(log, 'utf8').split('\n')) {
    const opened = /^(\d+)\s+openat\(AT_FDCWD, "([^"]*)", [^)]*O_DIRECTORY[^)]*\) = (\d+)/.exec(line);
    if (opened !== null && opened[2] === target) open.add(`${opened[1]}:${opened[3]}`);
    const closed = /^(\d+)\s+close\((\d+)\)/.exec(line);
    if (closed !== null) open.delete(`${closed[1]}:${closed[2]}`);
    const read = /^(\d+)\s+getdents64\((\d+),/.exec(line);
    if (read !== null && open.has(`${read[1]}:${read[2]}`)) reads++;
  }
  return { status: r.status, reads, stderr: r.stderr };
}

describe('a walnut open and the restores of its database', () => {
  beforeAll(async () => {
    await newDatabaseStream(dir, true);
  });

  it.skipIf(strace !== null || shim.error !== null)('reads no directory, and still settles a restore killed before its rename', async () => {
    const d = path.join(dir, 'traced');
    fs.mkdirSync(d);
    const db = path.join(d, 'app.db');
    oldDatabase(db);
    const plain = directoryReadsOfOpen(db);
    expect(plain.status, plain.stderr).toBe(0);
    expect(plain.reads).toBe(0);

    // a restore --force killed before its first change of a name in the directory: its new file whole, the old database untouched
    const child = spawn(process.execPath, [bin, 'restore', path.join(dir, 'new.ark'), db, '--force'], {
      env: { ...process.env, LD_PRELOAD: shim.path, CRASH_DIR: d, CRASH_AT: '1' },
      stdio: 'ignore',
    });
    const signal = await new Promise((resolve) => child.once('close', (_status, sig) => resolve(sig)));
    expect(signal).toBe('SIGKILL');
    expect(fs.readdirSync(d).filter((f) => f.includes('.restore-')).length).toBe(2); // its temporary file and the marker
    const settling = directoryReadsOfOpen(db);
    expect(settling.status, settling.stderr).toBe(0);
    expect(settling.reads).toBe(0);
    expect(fs.readdirSync(d).filter((f) => f.includes('.restore-'))).toEqual([]);
    expect(rows(db)).toBe('old:30\nok');
  }, 60_000);

  it('never removes a file it cannot prove a restore made (another tool\'s .app.db.restore-<12 hex>)', async () => {
    const d = path.join(dir, 'foreign');
    fs.mkdirSync(d);
    const db = path.join(d, 'app.db');
    oldDatabase(db);
    const foreign = path.join(d, '.app.db.restore-0123456789ab');
    const bytes = Buffer.from('another tool keeps its data here\n'.repeat(100));
    fs.writeFileSync(foreign, bytes);
    const old = new Date(Date.now() - 3_600_000);
    fs.utimesSync(foreign, old, old); // (an hour old: not a restore's new file by its age either)

    const opened = await walnut('checkpoint', db);
    expect(opened.status, opened.stderr).toBe(0);
    expect(fs.readFileSync(foreign).equals(bytes)).toBe(true);

    const restored = await walnut('restore', path.join(dir, 'new.ark'), db, '--force');
    expect(restored.status, restored.stderr).toBe(0);
    expect(rows(db)).toBe('new:7\nok');
    expect(fs.readFileSync(foreign).equals(bytes)).toBe(true);
    expect(fs.readdirSync(d).filter((f) => f.includes('.restore-'))).toEqual(['.app.db.restore-0123456789ab']); // (the marker gone too)
  }, 60_000);
});
