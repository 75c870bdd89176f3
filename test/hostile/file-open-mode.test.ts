// WalnutFile.open's `mode` went to the addon, which took its integer part (Int64Value): NaN, 0.5
// and -0.5 created the file with mode 0000 (unreadable to anyone but root), 420.9 as 0644, none
// refused. Now `mode` must be an integer in 0..0o7777 (WALNUT_INVALID_ARGUMENT, nothing created),
// as negative and too large ones already were; an integer still sets the permission bits.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { WalnutFile } from '../../lib/index';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('WalnutFile.open with a mode that is not a permission number', () => {
  it('is WALNUT_INVALID_ARGUMENT and creates nothing (async and sync); 0o640 still applies', async () => {
    for (const mode of [NaN, 0.5, -0.5, 420.9, Infinity, -1, 0o10000]) {
      const file = path.join(dir, `m-${String(mode)}`);
      await expectRejectsWalnut(WalnutFile.open(file, { create: true, mode }), 'WALNUT_INVALID_ARGUMENT');
      expectWalnutError(() => WalnutFile.openSync(file, { create: true, mode }), 'WALNUT_INVALID_ARGUMENT');
      expect(fs.existsSync(file)).toBe(false);
    }
    const file = path.join(dir, 'ok');
    const f = await WalnutFile.open(file, { create: true, mode: 0o640 });
    await f.close();
    expect(fs.statSync(file).mode & 0o7777).toBe(0o640 & ~process.umask());
  });
});
