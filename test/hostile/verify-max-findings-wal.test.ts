// verify()'s maxFindings ("stop after this many findings", default 1000) bounded only the b-tree
// checks: the WAL's damage (one finding per damaged sidecar group, however many), the -shm's
// findings and the header findings were added before them uncounted, so { maxFindings: 1 } on a
// WAL with six damaged frames in six groups answered six findings (a WAL of 100,000 frames with
// a damaged stretch: thousands). The report now holds at most maxFindings findings in all, the
// first ones in the order they were found (WAL and -shm first, then the pages).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, verify } from '../../lib/index';
import { tmpDir } from '../helpers/tmp';

const PS = 4096;
const FRAME = 24 + PS;

describe('verify maxFindings with WAL damage', () => {
  it('bounds every finding, the WAL\'s and the -shm\'s too', async () => {
    const file = path.join(tmpDir(), 'app.db');
    const store = await open(file, { pageSize: PS, fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true });
    for (let c = 0; c < 12; c++) await store.commit(Array.from({ length: 4 }, (_, i) => ({ pgno: 2 + i, data: Buffer.alloc(PS, 8 * c + i + 1) })), { dbSize: 6 });
    await store.close();
    const fd = fs.openSync(`${file}-wal`, 'r+');
    for (const f of [3, 10, 18, 26, 34, 42]) fs.writeSync(fd, Buffer.alloc(64, 0xee), 0, 64, 32 + (f - 1) * FRAME + 2000);
    fs.closeSync(fd);
    const all = await verify(file, 1);
    expect(all.issues.filter((i) => i.kind === 'wal-damage-repairable')).toHaveLength(6);
    for (const max of [1, 2, 5]) {
      const r = await verify(file, 1 + (max % 5), { maxFindings: max });
      expect(r.ok).toBe(false);
      expect(r.issues).toEqual(all.issues.slice(0, max));
    }
  });
});
