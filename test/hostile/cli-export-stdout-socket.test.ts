// `walnut export DB -o /dev/stdout` where stdout is a socket: every child a Node program spawns
// with stdio 'pipe' has socket pairs for its stdio (libuv), and Linux refuses to open a socket
// by name (ENXIO), so the export failed WALNUT_CANTOPEN though `-o -` and no -o worked. An -o
// that names the process's own stdout socket now writes to stdout, as `-o -` does; so
// `walnut restore /dev/stdin DB` reads stdin, as `walnut restore - DB` does (it failed WALNUT_IO).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { pythonSqlite, spawnOutput } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const walnut = path.resolve(__dirname, '../../bin/walnut.js');

describe('walnut export -o naming its own stdout socket', () => {
  it('/dev/stdout and /proc/self/fd/1 write the stream to stdout, as -o - does', async () => {
    const dir = tmpDir();
    const db = path.join(dir, 'app.db');
    await pythonSqlite(db, "c.execute('PRAGMA journal_mode=WAL'); c.execute('CREATE TABLE t(x)'); c.executemany('INSERT INTO t VALUES (?)', [(i,) for i in range(500)])");
    // stdio 'pipe' as node:child_process makes it: stdout a socket (checked, so the case is real)
    const probe = await spawnOutput(process.execPath, ['-e', "process.stdout.write(String(require('fs').fstatSync(1).isSocket()))"]);
    expect(probe.stdout).toBe('true');
    for (const [i, output] of ['-', '/dev/stdout', '/proc/self/fd/1'].entries()) {
      const r = await spawnOutput(process.execPath, [walnut, 'export', db, '-o', output], { encoding: 'buffer' });
      expect(r.stderr).toBe(`walnut export: ${r.stdout.length} bytes\n`);
      expect(r.status).toBe(0);
      expect(r.stdout.length).toBeGreaterThan(4096);
      // the stream restores (a stream carries its own id: no two are equal byte for byte)
      const ark = path.join(dir, `app${i}.ark`);
      fs.writeFileSync(ark, r.stdout);
      const restored = path.join(dir, `restored${i}.db`);
      const back = await spawnOutput(process.execPath, [walnut, 'restore', ark, restored]);
      expect(back.status, back.stderr).toBe(0);
      expect(await pythonSqlite(restored, "print(c.execute('SELECT count(*), sum(x) FROM t').fetchone())")).toBe('(500, 124750)');
    }
  });

  it('--json with -o naming stdout is refused: stdout carries the stream', async () => {
    const dir = tmpDir();
    const db = path.join(dir, 'app.db');
    await pythonSqlite(db, "c.execute('PRAGMA journal_mode=WAL'); c.execute('CREATE TABLE t(x)')");
    const r = await spawnOutput(process.execPath, [walnut, 'export', db, '-o', '/dev/stdout', '--json']);
    expect(r.status).toBe(2);
    expect(r.stdout + r.stderr).toMatch(/WALNUT_INVALID_ARGUMENT.*--json needs -o FILE/);
    // stdout a pipe, which opens by name: the summary went into the pipe after the stream
    // ({"bytes":N} appended to it, exit 0)
    const piped = await spawnOutput('bash', ['-c', '"$0" "$1" export "$2" -o /dev/stdout --json | od -c; exit ${PIPESTATUS[0]}', process.execPath, walnut, db]);
    expect(piped.stderr).toMatch(/WALNUT_INVALID_ARGUMENT.*--json needs -o FILE/);
    expect(piped.stdout).not.toMatch(/A   R   K/); // no stream went into the pipe
    expect(piped.status).toBe(2);
    // a character device both are is no stream to spoil: the summary goes where stdout goes
    const toNull = await spawnOutput('bash', ['-c', '"$0" "$1" export "$2" -o /dev/stdout --json > /dev/null', process.execPath, walnut, db]);
    expect(toNull.status, toNull.stderr).toBe(0);
  });

  it('walnut restore /dev/stdin and /proc/self/fd/0 on a socket read stdin, as - does', async () => {
    const dir = tmpDir();
    const db = path.join(dir, 'app.db');
    await pythonSqlite(db, "c.execute('PRAGMA journal_mode=WAL'); c.execute('CREATE TABLE t(x)'); c.executemany('INSERT INTO t VALUES (?)', [(i,) for i in range(300)])");
    const ark = path.join(dir, 'app.ark');
    expect((await spawnOutput(process.execPath, [walnut, 'export', db, '-o', ark])).status).toBe(0);
    const stream = fs.readFileSync(ark);
    for (const [i, source] of ['-', '/dev/stdin', '/proc/self/fd/0'].entries()) {
      const restored = path.join(dir, `restored${i}.db`);
      // input: stdin is a socket pair, as node:child_process makes it
      const r = await spawnOutput(process.execPath, [walnut, 'restore', source, restored], { input: stream, stdio: ['pipe', 'pipe', 'pipe'] });
      expect(r.status, r.stderr).toBe(0);
      expect(await pythonSqlite(restored, "print(c.execute('SELECT count(*), sum(x) FROM t').fetchone())")).toBe('(300, 44850)');
    }
  });

  it('walnut restore to /dev/stdout (a pipe or a socket) is refused as a FIFO is: WALNUT_CANTOPEN NotRegularFile', async () => {
    const dir = tmpDir();
    const db = path.join(dir, 'app.db');
    await pythonSqlite(db, "c.execute('PRAGMA journal_mode=WAL'); c.execute('CREATE TABLE t(x)')");
    const ark = path.join(dir, 'app.ark');
    expect((await spawnOutput(process.execPath, [walnut, 'export', db, '-o', ark])).status).toBe(0);
    // stdout a socket (spawnOutput's stdio) and a pipe (through sh)
    const socket = await spawnOutput(process.execPath, [walnut, 'restore', ark, '/dev/stdout', '--json']);
    const pipe = await spawnOutput('sh', ['-c', `"${process.execPath}" "${walnut}" restore "${ark}" /dev/stdout --json | cat`]);
    for (const r of [socket, pipe]) {
      expect(r.stderr).toBe('walnut: WALNUT_CANTOPEN: cannot restore to /dev/stdout: not a regular file\n'); // (it was WALNUT_IO: ENOENT ... stat '/proc/PID/fd/pipe:[N]')
      expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'WALNUT_CANTOPEN', reason: 'NotRegularFile' });
    }
    expect(socket.status).toBe(2);
  });
});
