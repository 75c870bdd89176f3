// Paths the system cannot look up: restore() to a path past PATH_MAX (4 KiB) rejected with
// node:fs's raw Error "ENAMETOOLONG: name too long, lstat '...-wal'" (the companions' lstat in
// requireRegularFiles), and `walnut export db -o <a 300-byte name>` said WALNUT_IO (the CLI's own
// lstat of the output) where openExportOutput says WALNUT_CANTOPEN. Now both are
// WALNUT_CANTOPEN naming the path, nothing created; the other verbs already were.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, restore, WalnutError } from '../../lib/index';
import { spawnOutput } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);

describe('a path too long to look up', () => {
  it('is WALNUT_CANTOPEN for restore() and walnut export -o', async () => {
    const db = path.join(dir, 'app.db');
    const store = await open(db, { pageSize: 1024 });
    await store.commit([{ pgno: 2, data: Buffer.alloc(1024, 2) }]);
    await store.close();
    const ark = path.join(dir, 'app.ark');
    expect((await walnut('export', db, '-o', ark)).status).toBe(0);

    const deep = path.join(dir, 'x/'.repeat(2100) + 'r.db'); // past PATH_MAX
    const e = await restore(fs.readFileSync(ark), deep).then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(WalnutError); // was a raw Error (ENAMETOOLONG)
    expect((e as WalnutError).code).toBe('WALNUT_CANTOPEN');

    const r = await walnut('export', db, '-o', path.join(dir, 'a'.repeat(300)));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^walnut: WALNUT_CANTOPEN: [^\n]*ENAMETOOLONG[^\n]*\n$/); // was WALNUT_IO
    expect(fs.readdirSync(dir).sort()).toEqual(['app.ark', 'app.db']);
  });
});
