// `walnut` alone and `walnut help <not a command>` printed the whole help on stderr and exited 2,
// with no line naming the WalnutError code: the one usage error left that was not the one line
// README promises for every exit 2 (an unknown command, a missing argument already were).
// `walnut help help` did the same, as if help were not a command. Now: the one line, naming
// what is wrong, exit 2; `walnut help` and `walnut help <command>` are help on stdout, exit 0.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';

const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);

describe('walnut without a command, or help for one that is not there', () => {
  it('is one line naming WALNUT_INVALID_ARGUMENT, exit 2 (with --json, the error object too)', async () => {
    const bare = await walnut();
    expect(bare.status).toBe(2);
    expect(bare.stderr).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: a command is needed: inspect, verify, [^\n]*\(walnut --help\)\n$/);
    expect(bare.stdout).toBe('');
    const unknown = await walnut('help', 'nope');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toBe("walnut: WALNUT_INVALID_ARGUMENT: unknown command 'nope' (walnut --help)\n");
    const json = await walnut('--json');
    expect(json.status).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'WALNUT_INVALID_ARGUMENT' } });
  });

  it('help, help help and help <command> are help on stdout, exit 0', async () => {
    for (const args of [['help'], ['help', 'help'], ['help', 'restore']]) {
      const r = await walnut(...args);
      expect(r.status, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).toMatch(/^Usage: walnut /);
      expect(r.stderr, args.join(' ')).toBe('');
    }
  });
});
