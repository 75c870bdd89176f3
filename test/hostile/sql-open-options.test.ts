// openDatabase() with options that are not an object: walnut's open() refuses them (WALNUT_
// INVALID_ARGUMENT, reason options), but openDatabase() opened the database with none of them
// for a number, a boolean, a function, a symbol, 0, '' or NaN (they were read as an object
// with no properties), and refused a string as "option 0: is not a walnut option" (its
// characters read as option names). Now each is refused as open() refuses it, before anything
// is created. A path holding a NUL byte is refused with reason path, as an empty one (the addon
// refused it, without a reason).
import * as fs from 'node:fs';
import * as path from 'node:path';

import { describe, expect, it } from 'vitest';

import { open } from '../../lib/index';
import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

describe('openDatabase() options that are not an object', () => {
  it('are refused as open() refuses them (WALNUT_INVALID_ARGUMENT, reason options), null too; no file is created; undefined means none', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'options.db');
    for (const options of [5, 0, Number.NaN, true, false, '', 'readConnections', Symbol('options'), () => ({}), 10n, null]) {
      const what = typeof options === 'symbol' ? 'a symbol' : `${typeof options} ${String(options)}`;
      await expectRejectsWalnut(open(file, options as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      const err = await expectRejectsWalnut(openDatabase(file, options as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expect(err.message, what).toMatch(/must be an object/);
      expect(fs.existsSync(file), what).toBe(false);
    }
    for (const options of [undefined]) {
      const db = await openDatabase(file, options as never);
      expect(await db.get('SELECT 1 AS one')).toEqual({ one: 1 });
      await db.close();
    }
  }, 30_000);
});

describe('a database path holding a NUL byte', () => {
  it('is refused with reason path, as an empty one is (the addon refused it without a reason); nothing is created', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'nul.db');
    for (const given of [`${file}\0x`, '\0']) {
      await expectRejectsWalnut(open(given), 'WALNUT_INVALID_ARGUMENT', { reason: 'path' });
      await expectRejectsWalnut(openDatabase(given), 'WALNUT_INVALID_ARGUMENT', { reason: 'path' });
    }
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
