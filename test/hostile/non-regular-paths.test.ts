// Non-regular files where walnut expects a database, a companion or an export's output. Every
// verb was tried with a FIFO, a directory, a socket and character devices (/dev/zero, /dev/null,
// /dev/urandom, also through symbolic links) as the database, its -wal, -shm and -wal-fec, a
// restore's target and input and an export's output; all gave a WalnutError or did what a
// device asks (an export to /dev/null), except one: an export to a FIFO nobody read yet
// (`walnut export app.db -o PIPE`, `openExportOutput(db, PIPE)`). Its O_WRONLY open waited for a
// reader inside openSync on the main thread, where SIGINT, SIGTERM and SIGHUP never reached
// their handlers (only SIGKILL ended the command) and an API caller's process froze. Now the
// open waits on a timer: the command stops on a signal while it waits, a destroyed stream ends
// the wait, and a reader that comes later gets the whole stream. Each run is a child process
// with a deadline, so a hang fails the test instead of freezing it. Also: restore() onto a FIFO
// or directory now says reason NotRegularFile, as it does for the target's -wal and -shm, and
// so do inspect() and verify() of a directory (as of a FIFO or a device there).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { restore } from '../../lib/export/restore';
import { inspect } from '../../lib/integrity/inspect';
import { verify } from '../../lib/integrity/verify';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { spawnOutput } from '../helpers/children';
import { Database, sqliteWritesWal, typicalWork } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const dist = path.resolve(__dirname, '..', '..', 'dist', 'index.js');
/** A hang detector only: each run here ends in well under a second on a quiet machine. */
const HANG_MS = 10_000;

/** The kernel function a process sleeps in (Linux), '' where it cannot be read. */
const wchan = (pid: number) => {
  try {
    return fs.readFileSync(`/proc/${pid}/wchan`, 'utf8');
  } catch {
    return '';
  }
};

/**
 * Whether process `pid` has a handler for `signal` (Linux: SigCgt in /proc/PID/status): the
 * export's own, there before it opens its output, so a signal sent then is the handler's to end
 * it (as it does once the open no longer holds the thread), not the default action's.
 */
const catches = (pid: number, signal: NodeJS.Signals) => {
  try {
    const caught = /^SigCgt:\s*([0-9a-f]+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return caught !== null && ((BigInt(`0x${caught[1]}`) >> BigInt(os.constants.signals[signal] - 1)) & 1n) === 1n;
  } catch {
    return false;
  }
};

const db = sqliteWritesWal(dir, 'app', 4096, typicalWork(5, 2)).db;
let fifos = 0;
const newFifo = async () => {
  const fifo = path.join(dir, `pipe${fifos++}`);
  expect((await spawnOutput('mkfifo', [fifo])).status).toBe(0);
  return fifo;
};

/** A `walnut export db -o fifo` child once it waits for the FIFO's reader. */
async function exportWaitingForReader(fifo: string, ...extra: string[]) {
  const child = spawn(process.execPath, [bin, 'export', db, '-o', fifo, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (status, signal) => resolve({ status, signal })));
  // waiting: asleep in the FIFO's open (the hang), or past it with the event loop idle (the
  // database read, the stream held for the reader), 3 polls in a row (not a moment of the start)
  let seen = 0;
  const waiting = () => ['wait_for_partner', 'do_epoll_wait', 'ep_poll'].includes(wchan(child.pid!));
  await until(() => (seen = waiting() ? seen + 1 : 0) >= 3 && catches(child.pid!, 'SIGTERM') && catches(child.pid!, 'SIGINT'), HANG_MS);
  /** The child's end, or null past HANG_MS (then SIGKILLed). */
  const end = async () => {
    const timer = new Promise<null>((resolve) => setTimeout(() => resolve(null), HANG_MS).unref());
    const r = await Promise.race([exited, timer]);
    if (r === null) child.kill('SIGKILL');
    return r;
  };
  return { child, end, stderr: () => stderr };
}

describe('walnut export -o FIFO while nobody reads the FIFO', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} ends it (it sat in the FIFO's open, deaf to every signal but SIGKILL)`, async () => {
      for (const extra of [[], ['--follow']]) {
        const fifo = await newFifo();
        const run = await exportWaitingForReader(fifo, ...extra);
        run.child.kill(signal);
        const r = await run.end();
        expect(r, `${extra.join(' ')}: still waiting in the open after ${signal}`).not.toBe(null);
        // ended by the signal, as an export interrupted before its output holds anything: with
        // --follow it exited 0 saying "N bytes" that nobody had read
        expect(r, `${extra.join(' ')}: ${run.stderr()}`).toEqual({ status: null, signal });
        expect(run.stderr()).not.toMatch(/bytes/);
        expect(fs.statSync(fifo).isFIFO()).toBe(true); // the FIFO left as it was
      }
    }, 4 * HANG_MS);
  }

  it('a reader that comes later gets the whole stream (one-shot and --force), which restores', async () => {
    const source = new Database(db, { readonly: true });
    const rows = source.prepare('SELECT * FROM t ORDER BY id').all();
    source.close();
    for (const extra of [[], ['--force']]) {
      const fifo = await newFifo();
      const run = await exportWaitingForReader(fifo, ...extra);
      const ark = path.join(dir, `read${fifos}.ark`);
      expect((await spawnOutput('sh', ['-c', 'exec cat "$1" > "$2"', 'sh', fifo, ark], { timeout: HANG_MS })).status).toBe(0);
      expect(await run.end(), run.stderr()).toEqual({ status: 0, signal: null });
      const restored = path.join(dir, `restored${fifos}.db`);
      await restore(fs.readFileSync(ark), restored);
      const back = new Database(restored, { readonly: true });
      expect(back.prepare('SELECT * FROM t ORDER BY id').all()).toEqual(rows);
      back.close();
    }
  }, 4 * HANG_MS);
});

describe('openExportOutput(db, FIFO) while nobody reads the FIFO', () => {
  it('returns at once; destroy() ends the wait without an error and the process exits (it froze in the open)', async () => {
    const fifo = await newFifo();
    const script = `
      const { openExportOutput } = require(${JSON.stringify(dist)});
      const out = openExportOutput(process.argv[1], process.argv[2]);
      out.on('error', (e) => console.log('error ' + e.code));
      out.on('close', () => console.log('closed'));
      setTimeout(() => out.destroy(), 100);`;
    const r = await spawnOutput(process.execPath, ['-e', script, db, fifo], { timeout: HANG_MS });
    expect(r.signal, 'hung in the open').toBe(null);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('closed');
    expect(r.status).toBe(0);
  }, 2 * HANG_MS);
});

describe('restore onto a path that is not a regular file', () => {
  it('WALNUT_CANTOPEN with reason NotRegularFile, as for its -wal or -shm (it had no reason); the path left as it was', async () => {
    const ark = path.join(dir, 'target.ark');
    const exported = await spawnOutput(process.execPath, [bin, 'export', db, '-o', ark], { timeout: HANG_MS });
    expect(exported.status, exported.stderr).toBe(0);
    const fifo = await newFifo();
    const directory = path.join(dir, 'a-directory');
    fs.mkdirSync(directory);
    for (const target of [fifo, directory]) {
      await expectRejectsWalnut(restore(fs.readFileSync(ark), target), 'WALNUT_CANTOPEN', { reason: 'NotRegularFile', path: target });
      const st = fs.statSync(target);
      expect(st.isFIFO() || (st.isDirectory() && fs.readdirSync(target).length === 0)).toBe(true);
    }
    expect(fs.readdirSync(dir).filter((f) => f.includes('walnut-restore'))).toEqual([]); // nothing made beside them
  }, 2 * HANG_MS);
});

describe('inspect and verify of a directory', () => {
  it('WALNUT_CANTOPEN with reason NotRegularFile, as of a FIFO or a device (it had no reason)', async () => {
    const directory = path.join(dir, 'dir.db');
    fs.mkdirSync(directory);
    expectWalnutError(() => inspect(directory), 'WALNUT_CANTOPEN', { reason: 'NotRegularFile', path: directory });
    await expectRejectsWalnut(verify(directory, 1), 'WALNUT_CANTOPEN', { reason: 'NotRegularFile', path: directory });
    expect(fs.readdirSync(directory)).toEqual([]);
  });
});

describe('every verb on a pipe named through /dev/stdin', () => {
  it('WALNUT_CANTOPEN NotRegularFile naming /dev/stdin (it was ENOENT on /proc/PID/fd/pipe:[N], the pipe\'s realpath; checkpoint and recover until session 43)', async () => {
    const { db } = sqliteWritesWal(dir, 'piped', 4096, typicalWork(3));
    for (const verb of ['inspect', 'verify', 'checkpoint', 'recover']) {
      const r = await spawnOutput('bash', ['-c', `cat "$2" | "$0" "$1" ${verb} /dev/stdin --json`, process.execPath, bin, db], { timeout: HANG_MS });
      expect(r.status, r.stderr).toBe(2);
      expect(JSON.parse(r.stdout)).toEqual({ error: { code: 'WALNUT_CANTOPEN', message: '/dev/stdin is not a regular file (a FIFO): not a database', reason: 'NotRegularFile', path: '/dev/stdin' } });
    }
  });
});

describe('open() of a pipe or socket named through /proc/self/fd/N', () => {
  it('WALNUT_CANTOPEN NotRegularFile naming the path given (it was ENOENT of /proc/PID/fd/pipe:[N])', async () => {
    const node = `const { open } = require(${JSON.stringify(path.resolve(__dirname, '..', '..', 'dist', 'index.js'))});
      open('/proc/self/fd/0').then(() => console.log('opened'), (e) => console.log(JSON.stringify({ code: e.code, reason: e.reason, message: e.message })));`;
    for (const stdin of ['pipe', 'socket'] as const) {
      const r = await spawnOutput('bash', ['-c', stdin === 'pipe' ? `cat /dev/null | "$0" -e "$1"` : `python3 -c 'import socket,subprocess,sys; a,b=socket.socketpair(); sys.exit(subprocess.run(sys.argv[1:],stdin=a).returncode)' "$0" -e "$1"`, process.execPath, node], { timeout: HANG_MS });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout), stdin).toEqual({ code: 'WALNUT_CANTOPEN', reason: 'NotRegularFile', message: `WALNUT_CANTOPEN: /proc/self/fd/0 is not a regular file (a ${stdin === 'pipe' ? 'FIFO' : 'socket'}): not a database` });
    }
  });
});

describe('inspect and verify of /proc/self/fd/N naming a database deleted while open', () => {
  it('WALNUT_CANTOPEN naming the path given (realpath of "<path> (deleted)" failed with a raw ENOENT, not a WalnutError)', async () => {
    const { db } = sqliteWritesWal(dir, 'deleted-while-open', 4096, typicalWork(2));
    const fd = fs.openSync(db, 'r');
    try {
      fs.rmSync(db);
      const named = `/proc/self/fd/${fd}`;
      expectWalnutError(() => inspect(named), 'WALNUT_CANTOPEN', { path: named });
      await expectRejectsWalnut(verify(named, 1), 'WALNUT_CANTOPEN', { path: named });
      expect(fs.existsSync(`${db} (deleted)`)).toBe(false); // nothing made for it
    } finally {
      fs.closeSync(fd);
    }
  });
});
