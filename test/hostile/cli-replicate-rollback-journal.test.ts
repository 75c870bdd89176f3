// `walnut replicate` on a database in rollback-journal mode (journal_mode DELETE, TRUNCATE or
// PERSIST, as sqlite3 left it) is refused as `walnut export` refuses it: exit 2, one line naming
// WALNUT_CANTOPEN (reason NotWalMode with --json) that tells how to switch the database oneself
// (sqlite3 DB 'PRAGMA journal_mode=WAL'), and the database's files exactly as they were, no -wal
// or -shm made. It opened a store on the database, which converted it to WAL mode for good
// (header bytes 18/19, the change counter) before the replication even tried to connect.
// An empty (0-byte) file is not a rollback-journal database yet: replicate keeps making it a
// WAL-mode database of one page and replicating it, as before (a path with no file is refused
// WALNUT_CANTOPEN "no such file", test/hostile/cli-path-unreachable-why).
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { NATS_SKIP, NOBODY_ANSWERS, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
// (a command that does not refuse runs until interrupted: the timeout ends it, and its status says so)
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args], { timeout: 15_000 });

/** The database's files that exist, by their hash (null: absent). */
const files = (db: string) => Object.fromEntries(['', '-wal', '-shm', '-journal'].map((s) => [s || 'db', fs.existsSync(db + s) ? createHash('sha256').update(fs.readFileSync(db + s)).digest('hex') : null]));

/** The file format write and read versions (header bytes 18 and 19): 1 rollback journal, 2 WAL. */
const formatVersions = (db: string) => [...fs.readFileSync(db).subarray(18, 20)];

function rollbackDatabase(mode: string, name = mode): string {
  const db = path.join(dir, `${name}.db`);
  execFileSync('sqlite3', [db, `PRAGMA journal_mode=${mode}; CREATE TABLE t(a); INSERT INTO t VALUES (1), (2); INSERT INTO t VALUES (3)`]);
  return db;
}

let nats: NatsNode | null = null;
afterAll(() => stopNats([nats]));

describe('walnut replicate on a rollback-journal database', () => {
  for (const mode of ['DELETE', 'TRUNCATE', 'PERSIST']) {
    it(`journal_mode ${mode}: refused as export refuses it, the files byte for byte as they were`, async () => {
      const db = rollbackDatabase(mode);
      expect(formatVersions(db)).toEqual([1, 1]);
      const before = files(db);
      expect(before['-wal']).toBeNull();
      expect(before['-shm']).toBeNull();
      const url = NOBODY_ANSWERS; // nothing listens: the refusal comes before any connection

      const r = await walnut('replicate', db, '--nats', url, '--stream', 's');
      // (it was not refused: it converted the database and ran, retrying the server, until the
      // timeout's SIGTERM stopped it: exit 0)
      expect(r.status, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^walnut: WALNUT_CANTOPEN: [^\n]*rollback-journal mode[^\n]*\n$/);
      // how to switch it oneself, with the path the user gave
      expect(r.stderr).toContain(`sqlite3 ${db} 'PRAGMA journal_mode=WAL'`);
      expect(files(db)).toEqual(before);
      expect(formatVersions(db)).toEqual([1, 1]);

      // --json: the same code and reason as export's refusal of the same database
      const json = await walnut('replicate', db, '--nats', url, '--stream', 's', '--json');
      expect(json.status, json.stderr).toBe(2);
      const exported = await walnut('export', db, '-o', path.join(dir, `${mode}.ark`), '--json');
      expect(exported.status, exported.stderr).toBe(2);
      const [refused, exportRefused] = [JSON.parse(json.stdout).error, JSON.parse(exported.stdout).error];
      expect(refused).toMatchObject({ code: 'WALNUT_CANTOPEN', reason: 'NotWalMode' });
      expect({ code: refused.code, reason: refused.reason }).toEqual({ code: exportRefused.code, reason: exportRefused.reason });
      expect(files(db)).toEqual(before);

      // still sqlite3's rollback-journal database, and switched by the command the message gives
      expect(execFileSync('sqlite3', [db, 'SELECT count(*) FROM t; PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('3\nok');
      expect(formatVersions(db)).toEqual([1, 1]);
      expect(execFileSync('sh', ['-c', /sqlite3 [^\n]*'PRAGMA journal_mode=WAL'/.exec(r.stderr)![0]], { encoding: 'utf8' }).trim()).toBe('wal');
      expect(formatVersions(db)).toEqual([2, 2]);
    }, 60_000);
  }

  // export and checkpoint refused it with the library's words ("open() converts it unless
  // convert: false": an option no command line has); now the same sqlite3 command as replicate
  it('walnut checkpoint and walnut export refuse it with the same sqlite3 command, the files as they were', async () => {
    const db = rollbackDatabase('DELETE', 'checkpoint-export');
    const before = files(db);
    for (const args of [['checkpoint', db, '--mode', 'truncate'], ['export', db, '-o', path.join(dir, 'delete.ark')]]) {
      const r = await walnut(...args);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^walnut: WALNUT_CANTOPEN: [^\\n]*rollback-journal mode, and walnut ${args[0]} does not switch it[^\\n]*\\n$`));
      expect(r.stderr).toContain(`sqlite3 ${db} 'PRAGMA journal_mode=WAL', then ${args[0]} it`);
      expect(files(db)).toEqual(before);
    }
    expect(fs.existsSync(path.join(dir, 'delete.ark'))).toBe(false);
  }, 60_000);

  it('a path with spaces and quotes is given to sqlite3 quoted as the shell needs', async () => {
    const db = path.join(dir, "it's my.db");
    execFileSync('sqlite3', [db, 'CREATE TABLE t(a); INSERT INTO t VALUES (1)']);
    const before = files(db);
    const r = await walnut('replicate', db, '--nats', NOBODY_ANSWERS, '--stream', 's');
    expect(r.status, r.stderr).toBe(2);
    expect(files(db)).toEqual(before);
    const command = /sqlite3 [^\n]*'PRAGMA journal_mode=WAL'/.exec(r.stderr)![0];
    expect(execFileSync('sh', ['-c', command], { encoding: 'utf8' }).trim()).toBe('wal');
    expect(formatVersions(db)).toEqual([2, 2]);
  }, 60_000);

  it.skipIf(NATS_SKIP !== null)('an empty (0-byte) file: made a WAL-mode database of one page and replicated, as before', async () => {
    nats = await startNatsServer();
    const db = path.join(dir, 'empty.db');
    fs.writeFileSync(db, '');
    const child = spawn(process.execPath, [bin, 'replicate', db, '--nats', nats.url, '--stream', 'empty', '--interval', '100', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let [stdout, stderr] = ['', ''];
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<[number | null, string | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
    try {
      await until(() => /"bases":[1-9]/.test(stdout) || child.exitCode !== null, 30_000, () => ({ stdout, stderr }));
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited, stderr).toEqual([0, null]);
    expect(stdout).toMatch(/"bases":[1-9]/);
    expect(formatVersions(db)).toEqual([2, 2]);
    expect(execFileSync('sqlite3', [db, 'PRAGMA journal_mode; PRAGMA page_count'], { encoding: 'utf8' }).trim()).toBe('wal\n1');
  }, 60_000);
});
