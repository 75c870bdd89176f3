// The command line's numbers, read by one parser (cli/index.ts digitsAsNumber) and, for a
// sequence, restore's own check (restore.ts checkUntil):
//  - `walnut restore --until N` and restore({ until }) took a sequence past the u64 a stream
//    numbers its commits with (2^64 and up: no commit has it) and restored the last state without
//    a word; now WALNUT_INVALID_ARGUMENT, reason until, before anything is created. 2^64 - 1
//    itself is a sequence (every commit is at or before it).
//  - `walnut bench --seconds` went through Number(): '0x10' ran 16 s per case, '1e3' 1000 s,
//    ' 2' and '' as typed; now only decimal digits (with a fraction) are a number of seconds.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { restore } from '../../lib/index';
import { spawnOutput } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { sqliteWritesWal, typicalWork } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]): ReturnType<typeof spawnOutput> => spawnOutput(process.execPath, [bin, ...args], { timeout: 20_000 });

describe('numbers on the command line and restore until past what they can be', () => {
  it('a sequence past 2^64 - 1 is refused (CLI and API) and nothing is created; 2^64 - 1 restores every commit', async () => {
    const db = sqliteWritesWal(dir, 'app', 4096, typicalWork(4, 1)).db;
    const ark = path.join(dir, 'app.ark');
    expect((await walnut('export', db, '-o', ark)).status).toBe(0);
    for (const until of ['18446744073709551616', '99999999999999999999999999']) {
      const target = path.join(dir, `past-${until.length}.db`);
      const r = await walnut('restore', ark, target, '--until', until, '--json');
      expect(r.status, until).toBe(2);
      expect(JSON.parse(r.stdout), until).toMatchObject({ error: { code: 'WALNUT_INVALID_ARGUMENT', reason: 'until' } });
      expect(r.stderr).toMatch(/--until as a commit sequence must be at most 2\^64 - 1/);
      await expectRejectsWalnut(restore(fs.createReadStream(ark), target, { until: BigInt(until) }), 'WALNUT_INVALID_ARGUMENT', { reason: 'until' });
      expect(fs.readdirSync(dir).filter((f) => f.startsWith('past-'))).toEqual([]);
    }
    const all = JSON.parse((await walnut('restore', ark, path.join(dir, 'all.db'), '--json')).stdout);
    const max = await walnut('restore', ark, path.join(dir, 'max.db'), '--until', '18446744073709551615', '--json');
    expect(max.status).toBe(0);
    expect(JSON.parse(max.stdout)).toMatchObject({ commits: all.commits, dbPages: all.dbPages, lastCommitSeq: all.lastCommitSeq, stoppedBy: null });
    expect(fs.readFileSync(path.join(dir, 'max.db')).equals(fs.readFileSync(path.join(dir, 'all.db')))).toBe(true);
  }, 20_000);

  it('bench --seconds is decimal digits only: 0x10, 1e3, " 2", "" are refused before any case runs', async () => {
    for (const seconds of ['0x10', '1e3', ' 2', '', '2.', '-1']) {
      const r = await walnut('bench', 'checksum', '--seconds', seconds, '--json');
      expect(r.status, seconds).toBe(2);
      expect(JSON.parse(r.stdout), seconds).toMatchObject({ error: { code: 'WALNUT_INVALID_ARGUMENT', reason: 'seconds' } });
    }
  }, 20_000);
});
