// `walnut restore app.ark restored.db` onto an existing restored.db said "restored.db exists;
// pass force to replace it": the API's option name, where the CLI's flag is --force (export's
// same refusal says "pass force (--force)"). Now restore says it the same way, and --force
// replaces the file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/index';
import { spawnOutput } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);

describe('walnut restore onto an existing database', () => {
  it('names the --force flag, and --force replaces it', async () => {
    const db = path.join(dir, 'app.db');
    const store = await open(db, { pageSize: 1024 });
    await store.commit([{ pgno: 2, data: Buffer.alloc(1024, 2) }]);
    await store.close();
    const ark = path.join(dir, 'app.ark');
    expect((await walnut('export', db, '-o', ark)).status).toBe(0);
    const target = path.join(dir, 'restored.db');
    fs.writeFileSync(target, 'keep me');
    const r = await walnut('restore', ark, target);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: .*exists; pass force \(--force\) to replace it/);
    expect(fs.readFileSync(target, 'utf8')).toBe('keep me');
    expect((await walnut('restore', ark, target, '--force')).status).toBe(0);
    expect(fs.statSync(target).size).toBe(2048);
  });
});
