// An array given where options go was taken as an object with no options (its indices named
// nothing): open(path, []), openDatabase(path, []), verify(path, level, []) and restore(..., [])
// went on with the defaults. Every verb refuses an argument it cannot read (README, "Every
// failure"): these now say WALNUT_INVALID_ARGUMENT reason 'options', before anything is opened.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { open, restore, verify } from '../../lib/index';
import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

describe('an array as options', () => {
  it('is refused by open, openDatabase, verify and restore, nothing created', async () => {
    const dir = tmpDir();
    for (const options of [[], [{ pageSize: 4096 }]]) {
      await expect(open(path.join(dir, 'a.db'), options as never)).rejects.toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'options' });
      await expect(openDatabase(path.join(dir, 'b.db'), options as never)).rejects.toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'options' });
      await expect(restore(new Uint8Array(0), path.join(dir, 'c.db'), options as never)).rejects.toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'options' });
    }
    expect(fs.readdirSync(dir)).toEqual([]);
    const s = await open(path.join(dir, 'd.db'));
    await s.close();
    await expect(verify(path.join(dir, 'd.db'), 1, [] as never)).rejects.toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'options' });
  });
});
