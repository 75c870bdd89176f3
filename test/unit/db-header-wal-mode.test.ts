// format/db-header.ts: journalModeOf and walModeHeader, the pure half of converting a
// rollback-journal database (test/interop/rollback-db.test.ts compares them with SQLite's own
// conversion).
import { describe, expect, it } from 'vitest';

import { DB_LOCK, decodeDbHeader, journalModeOf, newDatabasePage1, walModeHeader } from '../../lib/format/db-header';

/** A rollback-mode page 1: format versions 1/1, change counter `counter`, in-header size `size`. */
function rollbackPage1(counter: number, size: number, validFor = counter): Uint8Array {
  const page = newDatabasePage1(4096);
  const dv = new DataView(page.buffer);
  page[18] = 1;
  page[19] = 1;
  dv.setUint32(24, counter);
  dv.setUint32(28, size);
  dv.setUint32(92, validFor);
  return page;
}

describe('journal mode in the database header', () => {
  it('journalModeOf: 2/2 wal; any other mix of 1 and 2 rollback (convertible); anything else null', () => {
    const page = rollbackPage1(3, 5);
    const mode = (w: number, r: number) => {
      page[18] = w;
      page[19] = r;
      return journalModeOf(decodeDbHeader(page)!);
    };
    expect([mode(2, 2), mode(1, 1), mode(1, 2), mode(2, 1), mode(3, 2), mode(1, 0), mode(255, 255)]).toEqual(['wal', 'rollback', 'rollback', 'rollback', null, null, null]);
  });

  it('walModeHeader: versions 2/2, counter and version-valid-for + 1 (wrapping at 2^32), a trusted size kept, an untrusted one set from the file; nothing else', () => {
    const page = rollbackPage1(3, 5);
    const before = page.slice();
    const out = walModeHeader(page, 9);
    expect(page).toEqual(before); // the input is not changed
    expect(out.length).toBe(100);
    expect(decodeDbHeader(out)).toMatchObject({ writeVersion: 2, readVersion: 2, changeCounter: 4, versionValidFor: 4, inHeaderDbSize: 5 });
    const changed = [...out.keys()].filter((i) => out[i] !== before[i]);
    expect(changed).toEqual([18, 19, 27, 95]);

    expect(decodeDbHeader(walModeHeader(rollbackPage1(3, 5, 2), 9))).toMatchObject({ changeCounter: 4, versionValidFor: 4, inHeaderDbSize: 9 });
    expect(decodeDbHeader(walModeHeader(rollbackPage1(3, 0), 9))).toMatchObject({ inHeaderDbSize: 9 });
    expect(decodeDbHeader(walModeHeader(rollbackPage1(0xffffffff, 5), 5))).toMatchObject({ changeCounter: 0, versionValidFor: 0 });
    expect(() => walModeHeader(new Uint8Array(100), 1)).toThrow(RangeError);
  });

  it('DB_LOCK: SQLite unix VFS lock bytes', () => {
    expect(DB_LOCK).toEqual({ PENDING: 1073741824, RESERVED: 1073741825, SHARED_FIRST: 1073741826, SHARED_SIZE: 510 });
  });
});
