// An empty path ('' from an unset shell variable: `walnut checkpoint "$DB"`) given to checkpoint,
// recover, replicate or as restore's stream was "WALNUT_CANTOPEN: cannot open the database :
// no such file" (a name that reads as missing), where inspect, verify and export said it is a
// usage error. Now each says so: WALNUT_INVALID_ARGUMENT naming the empty path, exit 2.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args], { cwd: dir });

describe('an empty path', () => {
  it('is a usage error for every command that takes one', async () => {
    const cases: [string[], RegExp][] = [
      [['inspect', ''], /the database path must be a non-empty string/],
      [['checkpoint', ''], /the database path must be a non-empty string/],
      [['recover', ''], /the database path must be a non-empty string/],
      [['recover', '', '--repair'], /the database path must be a non-empty string/],
      [['replicate', '', '--nats', 'nats://127.0.0.1:1', '--stream', 's'], /the database path must be a non-empty string/],
      [['restore', '', path.join(dir, 'r.db')], /the export stream's path must be a non-empty string/],
    ];
    for (const [args, message] of cases) {
      const r = await walnut(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: [^\n]+\n$/);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
  });
});
