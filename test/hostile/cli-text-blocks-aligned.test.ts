// The text (non --json) output of a command is a column of names and a column of values; a
// nested object (inspect's shm block) is a block of its own below its name. The block's names
// were padded to the outer column's width, so a name longer than every outer one
// (backfillAttempted, 17 characters, against invalidTailBytes' 16) pushed its value one column
// right of the block's others. Each block now has its own width: every value of a block starts
// in the same column.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { spawnOutput } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');

/** The column each value of a block of `  name  value` lines starts in. */
const valueColumns = (lines: string[]) => lines.map((l) => /^ {2}\S+ +/.exec(l)![0].length);

describe('walnut inspect text output', () => {
  it("the shm block's values start in one column", async () => {
    const db = path.join(dir, 'app.db');
    const store = await open(db, { autoCheckpoint: false });
    try {
      await store.commit([{ pgno: 2, data: Buffer.alloc(4096, 1) }]); // a live -shm
      const r = await spawnOutput(process.execPath, [bin, 'inspect', db]);
      expect(r.status, r.stderr).toBe(0);
      const lines = r.stdout.split('\n');
      const block = lines.slice(lines.indexOf('shm:') + 1).filter((l) => l.startsWith('  '));
      expect(block.map((l) => l.trim().split(/ +/)[0])).toEqual(expect.arrayContaining(['backfilled', 'backfillAttempted', 'readMarks']));
      expect(new Set(valueColumns(block)).size, block.join('\n')).toBe(1);
    } finally {
      await store.close();
    }
  });
});
