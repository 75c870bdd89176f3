// Spawning real child processes for tests (lock holders, fault-injection runs, crash trials).
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

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
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}
