// walnut/sql under SIGKILL (issue #20's tests): a child runs transactions through walnut/sql
// (1, 16 or 64 concurrent callers, two rows and a counter increment each, small auto-checkpoints)
// and is killed at a random moment; then the sqlite3 CLI finds the database intact, every
// acknowledged transaction in it, no transaction torn (a pair whole or absent) and the counter
// equal to the transactions present.
import { execFileSync, spawn } from 'node:child_process';
import * as path from 'node:path';

import { describe, expect, it } from 'vitest';

import { tmpDir } from '../helpers/tmp';
import { seededRandom } from '../helpers/wal-damage';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { readLines } = require('../helpers/child-lines.js') as typeof import('../helpers/child-lines');

function cli(file: string, sql: string): string {
  return execFileSync('sqlite3', ['-cmd', '.timeout 5000', file, sql], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/**
 * Runs the child until it acknowledged `killAt` transactions and `killAfterMs` more passed (the
 * kill lands anywhere in a batch), then SIGKILL; the groups it acknowledged.
 */
async function runChild(file: string, callers: number, killAt: number, killAfterMs: number): Promise<number[]> {
  const child = spawn(process.execPath, [path.join(__dirname, 'sql-crash-child.js'), file, String(callers)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const acked: number[] = [];
  let timer: NodeJS.Timeout | null = null;
  let failure: string | null = null;
  const ended = await readLines(child, (line) => {
    if (line.startsWith('ack ')) {
      acked.push(Number(line.split(' ')[2]));
      if (acked.length === killAt) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    } else if (line !== 'ready') {
      failure ??= line;
    }
  });
  if (timer !== null) clearTimeout(timer);
  if (failure !== null || ended.signal !== 'SIGKILL') throw new Error(`child: ${failure ?? `exited ${ended.code} ${ended.signal}`} ${ended.stderr}`);
  return acked;
}

describe('walnut/sql SIGKILL crash trials', () => {
  it('6 trials (1, 16, 64 callers): every acknowledged transaction present, none torn, integrity ok', async () => {
    const dir = tmpDir('walnut-sql-crash-');
    const rand = seededRandom(20261130);
    const problems: string[] = [];
    for (let i = 0; i < 6; i++) {
      const file = path.join(dir, `c${i}.db`);
      const acked = await runChild(file, [1, 16, 64][i % 3]!, 5 + rand(60), rand(30));
      const integrity = cli(file, 'PRAGMA integrity_check');
      if (integrity !== 'ok') problems.push(`trial ${i}: integrity ${integrity}`);
      const halves = new Map<number, number>();
      for (const line of cli(file, 'SELECT g FROM t').split('\n').filter((l) => l !== '')) halves.set(Number(line), (halves.get(Number(line)) ?? 0) + 1);
      const torn = [...halves].filter(([, n]) => n !== 2).map(([g]) => g);
      if (torn.length > 0) problems.push(`trial ${i}: torn transactions ${torn.slice(0, 5).join(', ')}`);
      const missing = acked.filter((g) => !halves.has(g));
      if (missing.length > 0) problems.push(`trial ${i}: ${missing.length} acknowledged transactions missing (${missing.slice(0, 5).join(', ')})`);
      const counter = Number(cli(file, 'SELECT c FROM n WHERE k = 1'));
      if (counter !== halves.size) problems.push(`trial ${i}: counter ${counter} for ${halves.size} transactions present`);
    }
    expect(problems).toEqual([]);
  });
});
