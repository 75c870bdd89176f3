// A process SIGKILLed in the middle of a write lease's wait for WRITE (its bursts of lock tries on
// the lock lane, WalnutFile.lockWithin) or while it holds the lease it got from a burst: WRITE is
// an OFD lock of its -shm descriptor, which dies with the process, so another process's writer
// gets WRITE at once (busy timeout 0), and nothing is left in /proc/locks.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';

import { expect, test } from 'vitest';

import { HELPERS } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Lines {
  next(): Promise<string>;
}
const linesOf = (child: ChildProcess): Lines => {
  const it = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return { next: async () => String((await it.next()).value) };
};
/** A sqlite3 writer with busy timeout 0 (sqlite-write-gap.py): 'hold', 'commit'. */
const gapWriter = (file: string): { ask(command: string): Promise<string>; end(): void } => {
  const p = spawn('python3', [path.join(HELPERS, 'sqlite-write-gap.py'), file], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = linesOf(p);
  return {
    ask: async (command) => {
      p.stdin!.write(`${command}\n`);
      return lines.next();
    },
    end: () => p.stdin!.end(),
  };
};
const killed = async (child: ChildProcess): Promise<void> => {
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGKILL');
  await exited;
};
const ofdLocks = (file: string): string[] => {
  const { ino } = fs.statSync(file);
  return fs.readFileSync('/proc/locks', 'utf8').split('\n').filter((l) => l.includes('OFDLCK') && l.includes(`:${ino} `));
};

test('SIGKILL mid-burst, and while holding a lease a burst took: another process gets WRITE at once', async () => {
  const file = path.join(tmpDir(), 'lease-kill.db');
  sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w, v)');
  const a = gapWriter(file);
  const b = gapWriter(file);
  try {
    // killed while its bursts try for WRITE that `a` holds
    expect(await a.ask('hold')).toBe('ok');
    const waiter = spawn(process.execPath, [path.join(HELPERS, 'lease-waiter-child.js'), file], { stdio: ['ignore', 'pipe', 'inherit'] });
    expect(await linesOf(waiter).next()).toBe('waiting');
    await sleep(300);
    await killed(waiter);
    expect(await a.ask('commit')).toBe('ok');
    expect(await b.ask('hold'), 'WRITE right after the kill').toBe('ok');
    expect(await b.ask('commit')).toBe('ok');

    // killed holding the lease its burst took when `a` let WRITE go
    expect(await a.ask('hold')).toBe('ok');
    const holder = spawn(process.execPath, [path.join(HELPERS, 'lease-waiter-child.js'), file], { stdio: ['ignore', 'pipe', 'inherit'] });
    const said = linesOf(holder);
    expect(await said.next()).toBe('waiting');
    await sleep(300);
    expect(await a.ask('commit')).toBe('ok');
    expect(await said.next()).toBe('held');
    expect(await b.ask('hold'), 'the lease keeps others out').toBe('busy');
    await killed(holder);
    expect(await b.ask('hold'), 'WRITE right after the kill').toBe('ok');
    expect(await b.ask('commit')).toBe('ok');
    expect(ofdLocks(`${file}-shm`)).toEqual([]);
  } finally {
    a.end();
    b.end();
  }
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
}, 60_000);
