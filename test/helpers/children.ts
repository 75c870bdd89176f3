// Spawning real child processes for tests (lock holders, fault-injection runs, crash trials).
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

import { expect } from 'vitest';

export const HELPERS = __dirname;

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

/** Runs a python3 script (its stderr passed through); resolves with its whole stdout once it exits 0. */
export function runPython(script: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    // 'close' (output read to its end), not 'exit': see runNode
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${path.basename(script)} exited with ${code}`))));
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
