// WalnutFile.open/openSync of a file that cannot be opened as asked (not there, a path through a
// file, a directory, a name too long) said WALNUT_IO, as if the disk had failed, where open()
// says WALNUT_CANTOPEN for a database it cannot create (SQLite: SQLITE_CANTOPEN for any of
// them); now WALNUT_CANTOPEN with the open's errno, syscall and path. And an option it does not
// take was dropped: a misspelt `readonly` opened the file for writing. Now refused, as every
// other verb refuses an option name it does not take (option-names.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { WalnutFile } from '../../lib/io/file';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('WalnutFile.open of what it cannot open', () => {
  it('is WALNUT_CANTOPEN with errno, syscall and path, async and sync', async () => {
    const plain = path.join(dir, 'plain');
    fs.writeFileSync(plain, 'x');
    const cases: [string, number][] = [
      [path.join(dir, 'missing'), 2], // ENOENT
      [path.join(dir, 'nodir', 'x'), 2],
      [path.join(plain, 'x'), 20], // ENOTDIR
      [dir, 21], // EISDIR
      [path.join(dir, 'n'.repeat(300)), 36], // ENAMETOOLONG
    ];
    for (const [p, errno] of cases) {
      const err = await expectRejectsWalnut(WalnutFile.open(p), 'WALNUT_CANTOPEN', { errno, syscall: 'open', path: p });
      expect(err.message).toContain(p);
      expectWalnutError(() => WalnutFile.openSync(p), 'WALNUT_CANTOPEN', { errno, syscall: 'open', path: p });
    }
    // a directory that cannot be opened to sync it: the same
    await expectRejectsWalnut(WalnutFile.syncDirectory(path.join(dir, 'nodir')), 'WALNUT_CANTOPEN', { errno: 2 });
    // an exclusive create of an existing file is no refusal to open: the caller asked to fail so
    await expectRejectsWalnut(WalnutFile.open(plain, { exclusive: true }), 'WALNUT_IO', { errno: 17 });
  });

  it('refuses an option it does not take (a misspelt readonly), async and sync; Symbol keys are no option names', async () => {
    const p = path.join(dir, 'opts');
    fs.writeFileSync(p, 'x');
    for (const options of [{ readonly: true }, { create: true, followSymlink: true }, Object.create({ exclusiv: true })]) {
      const err = await expectRejectsWalnut(WalnutFile.open(p, options), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expect(err.message).toMatch(/readonly|followSymlink|exclusiv/);
      expectWalnutError(() => WalnutFile.openSync(p, options), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    }
    const f = await WalnutFile.open(p, { readOnly: true, [Symbol('note')]: 1 } as object);
    expect(f.sizeSync()).toBe(1);
    await f.close();
  });

  it('readPrefixSync reads at most the bytes asked for, and asks for a bound', () => {
    const p = path.join(dir, 'prefix');
    fs.writeFileSync(p, 'abcdef');
    expect(WalnutFile.readPrefixSync(p, 4).toString()).toBe('abcd');
    expect(WalnutFile.readPrefixSync(p, 100).toString()).toBe('abcdef');
    expect(WalnutFile.readPrefixSync(p, 0).length).toBe(0);
    for (const bad of [-1, 1.5, NaN, undefined]) expectWalnutError(() => WalnutFile.readPrefixSync(p, bad as number), 'WALNUT_INVALID_ARGUMENT', { reason: 'maxBytes' });
  });
});
