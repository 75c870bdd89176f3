// verify of a WAL with a huge invalid tail (zeros of a sparse or preallocated -wal, or an older
// generation's frames): where recovery stops, the damage check looked for a later frame of this
// generation header by header to the end of the file (a sparse 10 GiB -wal: 49 s; 2 GiB: 26 s,
// 520,000 preads). Now it looks DAMAGE_LOOKAHEAD_FRAMES frames ahead at most. Measured in read
// system calls of this process (/proc/self/io syscr), not in time.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { inspect } from '../../lib/integrity/inspect';
import { verify } from '../../lib/integrity/verify';
import { sqliteWritesWal } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const readCalls = () => Number(/^syscr: (\d+)$/m.exec(fs.readFileSync('/proc/self/io', 'utf8'))![1]);

describe('verify of a WAL with a huge invalid tail', () => {
  it('reads a bounded stretch past where recovery stops, and finds nothing wrong', async () => {
    const { db: copy, wal } = sqliteWritesWal(dir, 'tail', 4096, (s) => s.exec('CREATE TABLE t(v); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)'));
    fs.truncateSync(wal, 512 * 1024 * 1024); // sparse: 130,000 frames' room of zeros
    const frames = inspect(copy).walFrames;
    const before = readCalls();
    const r = await verify(copy, 5);
    const reads = readCalls() - before;
    expect(r).toMatchObject({ ok: true, issues: [] });
    expect(inspect(copy)).toMatchObject({ walFrames: frames, invalidTailBytes: 512 * 1024 * 1024 - 32 - frames * (24 + 4096) });
    expect(reads).toBeLessThan(40_000); // DAMAGE_LOOKAHEAD_FRAMES (16,384) and some; was one per frame of the tail (~130,000)
  });
});
