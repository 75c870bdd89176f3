// `--json` on a command that fails: stdout is still one JSON object, the error's code, message and
// (where it has them) reason and path, beside the one line on stderr and exit 2. stdout was empty:
// `walnut verify app.db --json | jq` read no JSON at all, and `JSON.parse` of the output threw,
// for a missing file as for a usage error. Without --json stdout stays empty on a failure.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { Database, sqliteWritesWal, typicalWork } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);

describe('walnut <command> --json that fails', () => {
  it('writes one JSON object naming the error on stdout (the code of the stderr line), exit 2; nothing on stdout without --json', async () => {
    const db = sqliteWritesWal(dir, 'app', 4096, typicalWork(4, 1)).db;
    const notDb = path.join(dir, 'text.db');
    fs.writeFileSync(notDb, 'not a database at all, but long enough to have a header ............................................');
    const rollback = path.join(dir, 'rollback.db');
    const s = new Database(rollback);
    s.exec('CREATE TABLE x(y)');
    s.close();
    const ark = path.join(dir, 'not-a-stream.ark');
    fs.writeFileSync(ark, 'garbage, not ARKHEXP1');
    const cases: [string[], string][] = [
      [['inspect', path.join(dir, 'missing.db')], 'WALNUT_CANTOPEN'],
      [['verify', dir], 'WALNUT_CANTOPEN'],
      [['verify', notDb], 'WALNUT_CANTOPEN'],
      [['verify', db, '--level', '9'], 'WALNUT_INVALID_ARGUMENT'],
      [['checkpoint', db, '--mode', 'sideways'], 'WALNUT_INVALID_ARGUMENT'],
      [['checkpoint', rollback], 'WALNUT_CANTOPEN'],
      [['recover', path.join(dir, 'missing.db')], 'WALNUT_CANTOPEN'],
      [['export', db, '-o', path.join(dir, 'no-such-dir', 'x.ark')], 'WALNUT_CANTOPEN'],
      [['export', db], 'WALNUT_INVALID_ARGUMENT'], // --json needs -o: refused before any stream
      [['restore', ark, path.join(dir, 'restored.db')], 'WALNUT_INVALID_FRAMING'],
      [['restore', ark, path.join(dir, 'restored.db'), '--until', 'yesterday'], 'WALNUT_INVALID_ARGUMENT'],
      [['replicate', db, '--nats', 'nats://127.0.0.1:1', '--stream', 's', '--replicas', '9'], 'WALNUT_INVALID_ARGUMENT'],
      [['bench', 'nothing'], 'WALNUT_INVALID_ARGUMENT'],
      // usage errors found by the argument parser
      [['inspect', db, '--bogus'], 'WALNUT_INVALID_ARGUMENT'],
      [['verify'], 'WALNUT_INVALID_ARGUMENT'],
      [['inspect', db, 'another.db'], 'WALNUT_INVALID_ARGUMENT'],
    ];
    for (const [args, code] of cases) {
      const what = args.join(' ');
      const r = await walnut(...args, '--json');
      expect(r.status, what).toBe(2);
      expect(r.stderr, what).toMatch(new RegExp(`^walnut: ${code}: [^\\n]+\\n$`));
      expect(() => JSON.parse(r.stdout), `${what}: stdout ${JSON.stringify(r.stdout)}`).not.toThrow();
      expect(r.stdout.trim().split('\n'), what).toHaveLength(1);
      const out = JSON.parse(r.stdout) as { error: { code: string; message: string } };
      expect(out.error.code, what).toBe(code);
      // the message is the stderr line's, after its code
      expect(`walnut: ${out.error.code}: ${out.error.message}\n`, what).toBe(r.stderr);
      if (args.length === 2 && args[0] === 'export') continue; // (without --json: an export to stdout)
      const plain = await walnut(...args);
      expect(plain.status, what).toBe(2);
      expect(plain.stdout, what).toBe('');
    }
    expect(fs.existsSync(path.join(dir, 'restored.db'))).toBe(false);
  });

});
