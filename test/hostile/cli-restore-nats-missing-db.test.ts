// `walnut restore --nats URL --stream NAME` without the database path said "missing required
// argument 'stream'": the user had given --stream; what was missing was the database. The
// argument parser named restore's first positional (the export stream, or with --nats the
// database). Now a restore missing its paths says which, in both forms; nothing is created.
// '-' as the database (stdin/stdout elsewhere here) made a file called '-': refused now.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args], { cwd: dir });

describe('walnut restore without its paths', () => {
  it('with --nats --stream and no database: names the database path, not "argument \'stream\'"', async () => {
    const r = await walnut('restore', '--nats', 'nats://127.0.0.1:1', '--stream', 'app');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: [^\n]*database path[^\n]*\n$/);
    expect(r.stderr).not.toMatch(/argument 'stream'/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('with nothing: needs a stream and a database path', async () => {
    const r = await walnut('restore');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: restore needs a stream and a database path[^\n]*\n$/);
    const json = await walnut('restore', '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'WALNUT_INVALID_ARGUMENT' } });
  });

  it("- as the database (stdin/stdout elsewhere in this CLI) is refused in both forms: no file called '-' is made", async () => {
    for (const args of [['restore', '--nats', 'nats://127.0.0.1:1', '--stream', 'app', '-'], ['restore', '-', '-'], ['restore', '--json', 'some.ark', '-']]) {
      const r = await walnut(...args);
      expect(r.status, args.join(' ')).toBe(2);
      if (args.includes('--json')) expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'WALNUT_INVALID_ARGUMENT', reason: 'db' } });
      else expect(r.stderr).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: the database to restore into is a file, not -[^\n]*\n$/);
    }
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('the usage line still shows both forms', async () => {
    const r = await walnut('restore', '--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: walnut restore \[options\] <stream> <db>\n {7}\| walnut restore \[options\] --nats <url> --stream <name> <db>\n/);
  });
});
