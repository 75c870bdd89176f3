// Spawning real child processes for tests (lock holders, fault-injection runs, crash trials).
// A child that runNode, startPython or spawnOutput started inside a test ends with that test:
// when the test finishes (passed, failed or timed out) while the child still runs, it is killed
// and waited for, so a test that timed out leaves no process writing into its tmp dir (whose
// removal after the file then failed with ENOTEMPTY) and none outliving the run.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect, onTestFinished } from 'vitest';
import { getCurrentTest } from 'vitest/suite';

export const HELPERS = __dirname;

/** Whether `child` has not exited yet. */
function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * When the current test finishes, kills `child` (SIGKILL) if it still runs and waits for its
 * exit. Outside a test (a beforeAll, a script) nothing: the caller owns the child's end there.
 */
function endWithTest(child: ChildProcess): void {
  if (!getCurrentTest()) return;
  onTestFinished(async () => {
    if (!running(child) || child.pid === undefined) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  });
}

/** Starts a lock holder and resolves once it reports the lock is held. */
export function holdLock(file: string, start: number, length: number, mode: 'shared' | 'exclusive', kind: 'ofd' | 'classic' = 'ofd'): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(HELPERS, 'lock-holder.js'), file, String(start), String(length), mode, kind], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('locked')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`lock holder exited early (${code})`)));
  });
}

export function release(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.on('exit', () => resolve());
    child.stdin!.end();
  });
}

/** Runs a node script with extra environment; resolves with its exit code and output. */
export function runNode(script: string, args: string[] = [], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  endWithTest(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  // 'close', not 'exit': libuv reaps every exited child on one SIGCHLD, so a child's 'exit' can
  // come before its output was read (two children ending together, the event loop busy)
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/**
 * Runs a node script that prints one JSON line and must write nothing to stderr (the fault
 * children: they report `crashed` instead of throwing); returns the parsed line.
 */
export async function runJsonChild<T>(script: string, args: string[], env: Record<string, string> = {}): Promise<T> {
  const r = await runNode(script, args, env);
  expect(r.stderr).toBe('');
  const out = JSON.parse(r.stdout);
  expect(out.crashed).toBeUndefined();
  return out as T;
}

/**
 * Runs `count` sqlite3 writer processes (sqlite-writer.py: python3's sqlite3, one row per
 * transaction, wal_autocheckpoint `autocheckpoint`) on `db` for `seconds`; resolves with the
 * commits they made.
 */
export async function sqliteWriters(db: string, count: number, seconds: number, autocheckpoint: number): Promise<number> {
  const runs = Array.from({ length: count }, (_, w) => runPython(path.join(HELPERS, 'sqlite-writer.py'), [db, String(seconds), String(w + 1), String(autocheckpoint)]));
  return (await Promise.all(runs)).reduce((a, out) => {
    if (!/^\d+$/.test(out.trim())) throw new Error(`sqlite-writer.py printed ${JSON.stringify(out)}, not its commit count`);
    return a + Number(out.trim());
  }, 0);
}

/**
 * python3's sqlite3 on `file` (busy timeout 5 s, autocommit) running `body` with connection `c`,
 * then closing it; resolves with its stdout, trimmed. Asynchronous: a walnut connection in this
 * process lets WRITE and its read marks go only when the event loop turns.
 */
export function pythonSqlite(file: string, body: string): Promise<string> {
  const script = `import sqlite3, sys\nc = sqlite3.connect(sys.argv[1], timeout=5, isolation_level=None)\n${body}\nc.close()\n`;
  const child = spawn('python3', ['-c', script, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`python3 exited with ${code}: ${err}`)))));
}

/**
 * A python3 sqlite3 reader process (sqlite-reader.py), driven one command at a time: cmd()
 * resolves with its "ok ..." reply (an "err ..." one rejects); end() closes its stdin and waits
 * for it to exit. Started inside a test it ends with the test; in a beforeAll the caller ends it.
 */
export function sqliteReaderProcess(): { cmd(line: string): Promise<string>; end(): Promise<void> } {
  const child: ChildProcess = spawn('python3', [path.join(HELPERS, 'sqlite-reader.py')], { stdio: ['pipe', 'pipe', 'inherit'] });
  endWithTest(child);
  const waiting: ((line: string) => void)[] = [];
  let buffer = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffer += d.toString();
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      waiting.shift()?.(line);
    }
  });
  return {
    async cmd(line: string): Promise<string> {
      const reply = await new Promise<string>((resolve) => {
        waiting.push(resolve);
        child.stdin!.write(`${line}\n`);
      });
      if (!reply.startsWith('ok')) throw new Error(`sqlite-reader.py ${line}: ${reply}`);
      return reply;
    },
    end: () =>
      new Promise<void>((resolve) => {
        child.once('close', () => resolve());
        child.stdin!.end();
      }),
  };
}

/**
 * A python3 sqlite3 reader holding a read transaction at the WAL's end as it is now (a WAL read
 * mark: checkpoints stop there), until end(); it ends with the test.
 */
export async function pythonReader(file: string): Promise<{ end(): Promise<void> }> {
  const reader = sqliteReaderProcess();
  await reader.cmd(`open ${file}`);
  await reader.cmd('begin');
  return {
    end: async () => {
      await reader.cmd('end');
      await reader.end();
    },
  };
}

/** Process `pid` has `file` open (a descriptor of it in /proc). */
export function processHasOpen(pid: number, file: string): boolean {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === file;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** Runs a python3 script (its stderr passed through); resolves with its whole stdout once it exits 0. */
export function runPython(script: string, args: string[]): Promise<string> {
  return startPython(script, args).output;
}

/**
 * runPython, with a way to end the script early: stop() sends it SIGTERM, which sqlite-writer.py
 * takes as its SECONDS having passed (send it once the script has begun: before its handler is
 * set, SIGTERM ends the process and `output` rejects); `output` settles as runPython's.
 */
export function startPython(script: string, args: string[]): { output: Promise<string>; stop: () => void } {
  const child = spawn('python3', [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  endWithTest(child);
  const output = new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    // 'close' (output read to its end), not 'exit': see runNode
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${path.basename(script)} exited with ${code}`))));
  });
  return { output, stop: () => void (running(child) && child.kill('SIGTERM')) };
}

/** What spawnOutput() resolves with: spawnSync's fields, read without blocking the event loop. */
export interface Spawned<Out extends string | Buffer = string> {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Out;
  stderr: string;
}

export interface SpawnOutputOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** stdin, stdout, stderr as spawn() takes them; the default ['ignore', 'pipe', 'pipe'] (stdin at EOF, as spawnSync's without input). */
  stdio?: StdioOptions;
  /** Written to the child's stdin, which is then closed (stdin is a pipe then, unless stdio says otherwise). */
  input?: string | Uint8Array;
  /** SIGTERM after this many ms (a hang detector: the result's signal says it came). */
  timeout?: number;
  /** 'buffer': stdout as the bytes the child wrote. */
  encoding?: 'utf8' | 'buffer';
}

/**
 * Runs a command to its end and resolves with its status, signal and output: spawnSync without
 * blocking this process's event loop. A test that ran a few CLI processes in a row with
 * spawnSync held the vitest worker's event loop for their whole run (minutes at load 13-31),
 * and vitest's RPC from that worker (onTaskUpdate, 60 s) timed out and failed the run.
 */
export function spawnOutput(command: string, args: string[], options: SpawnOutputOptions & { encoding: 'buffer' }): Promise<Spawned<Buffer>>;
export function spawnOutput(command: string, args: string[], options?: SpawnOutputOptions & { encoding?: 'utf8' }): Promise<Spawned<string>>;
export function spawnOutput(command: string, args: string[], options: SpawnOutputOptions = {}): Promise<Spawned<string | Buffer>> {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: options.stdio ?? [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  endWithTest(child);
  child.stdin?.on('error', () => undefined); // (EPIPE: a child that exits without reading its input; its status tells)
  child.stdin?.end(options.input);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (d: Buffer) => out.push(d));
  child.stderr?.on('data', (d: Buffer) => err.push(d));
  const timer = options.timeout === undefined ? null : setTimeout(() => child.kill('SIGTERM'), options.timeout);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    // 'close' (its output read to the end), not 'exit': see runNode
    child.on('close', (status, signal) => {
      if (timer) clearTimeout(timer);
      const stdout = Buffer.concat(out);
      resolve({ status, signal, stdout: options.encoding === 'buffer' ? stdout : stdout.toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** A SQLite connection in another process (test/helpers/sqlite-peer.js). */
export class SqlitePeer {
  readonly #child: ChildProcess;
  readonly #pending: ((v: { ok: boolean; result?: unknown; error?: string; code?: string }) => void)[] = [];
  #buffer = '';
  readonly ready: Promise<void>;

  constructor(dbPath: string) {
    this.#child = spawn(process.execPath, [path.join(HELPERS, 'sqlite-peer.js'), dbPath], { stdio: ['pipe', 'pipe', 'inherit'] });
    let markReady: () => void;
    this.ready = new Promise((resolve) => (markReady = resolve));
    this.#child.stdout!.on('data', (d) => {
      this.#buffer += d;
      let nl;
      while ((nl = this.#buffer.indexOf('\n')) >= 0) {
        const line = JSON.parse(this.#buffer.slice(0, nl));
        this.#buffer = this.#buffer.slice(nl + 1);
        if (line.ready) markReady();
        else this.#pending.shift()?.(line);
      }
    });
  }

  /** The peer's process id (SQLite's POSIX locks name it). */
  get pid(): number {
    return this.#child.pid!;
  }

  async request(op: string, sql?: string): Promise<unknown> {
    await this.ready;
    const reply = await new Promise<{ ok: boolean; result?: unknown; error?: string; code?: string }>((resolve) => {
      this.#pending.push(resolve);
      this.#child.stdin!.write(JSON.stringify({ op, sql }) + '\n');
    });
    if (!reply.ok) throw Object.assign(new Error(reply.error), { code: reply.code });
    return reply.result;
  }

  exec(sql: string) {
    return this.request('exec', sql);
  }
  get<T = Record<string, unknown>>(sql: string) {
    return this.request('get', sql) as Promise<T>;
  }
  all<T = Record<string, unknown>>(sql: string) {
    return this.request('all', sql) as Promise<T[]>;
  }
  pragma(sql: string) {
    return this.request('pragma', sql);
  }
  async close(): Promise<void> {
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    await this.request('close');
    await exited;
  }
}
