// `walnut export app.db -o ''` wrote the export stream to stdout (an empty -o was taken for no
// -o at all): a script whose output variable came out empty (`-o "$OUT"`) sent a backup into
// whatever its stdout was — a log, a terminal — and exited 0. Now the empty path is refused as
// openExportOutput refuses it (exit 2, one line naming WALNUT_INVALID_ARGUMENT), no stream on
// stdout (with --json, the failure's JSON object); `-o -` is still stdout.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/index';
import { spawnOutput } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);

describe('walnut export -o with an empty path', () => {
  it('is refused, nothing written to stdout', async () => {
    const db = path.join(dir, 'app.db');
    const store = await open(db, { pageSize: 1024 });
    await store.commit([{ pgno: 2, data: Buffer.alloc(1024, 2) }]);
    await store.close();
    for (const args of [['-o', ''], ['--output='], ['-o', '', '--json']]) {
      const r = await walnut('export', db, ...args);
      expect(r.status).toBe(2);
      // no stream; with --json the failure's object (test/hostile/cli-json-error.test.ts)
      if (args.includes('--json')) expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'WALNUT_INVALID_ARGUMENT' } });
      else expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: [^\n]*\n$/);
    }
    const r = await walnut('export', db, '-o', '-');
    expect(r.status).toBe(0);
    expect(r.stdout.startsWith('ARKHEXP1')).toBe(true);
  });
});
