// `walnut bench`'s better-sqlite3 case (`commit`, `all`) and its checksum case (`checksum`, `all`)
// are synchronous loops of `--seconds` and 4 x 300 ms: a SIGINT or SIGTERM that came during one
// waited for the loop to end, and its handler (remove the directory, end by the signal) had
// been removed by then (the run's finally), so the signal was lost: the bench ran on to its
// end, printed its rows and exited 0 (measured: SIGINT 3 s into the better-sqlite3 part of
// `bench commit --seconds 3` waited 3.0 s, exit 0; `bench checksum` the same). Now the loops
// give the event loop a turn every 50 ms and the handler stays until the directory is gone:
// the process removes its directory and ends by the signal wherever it came.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');

/** Runs `walnut bench <scenario>`, sends `signal` once `reached` holds of the bench directory's files, and returns how it ended and what it left. */
async function interrupt(scenario: string, seconds: number, signal: NodeJS.Signals, reached: (files: string[]) => boolean) {
  const tmp = fs.mkdtempSync(path.join(dir, `${scenario}-${signal}-`)); // the bench's TMPDIR: what it leaves is seen here
  const bench = spawn(process.execPath, [bin, 'bench', scenario, '--seconds', String(seconds)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: tmp } });
  let stdout = '';
  let stderr = '';
  bench.stdout!.on('data', (d) => (stdout += d));
  bench.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<[number | null, string | null]>((resolve) => bench.once('exit', (code, sig) => resolve([code, sig])));
  const files = (): string[] | null => {
    const dirs = fs.readdirSync(tmp);
    return dirs.length === 0 ? null : dirs.flatMap((d) => fs.readdirSync(path.join(tmp, d)));
  };
  try {
    await until(() => {
      const f = files();
      return f !== null && reached(f);
    }, 60_000, () => ({ stderr, files: files() }));
  } finally {
    bench.kill(signal);
  }
  return { ended: await exited, left: fs.readdirSync(tmp), stdout, stderr };
}

describe('walnut bench interrupted in a synchronous part', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} during the better-sqlite3 case: the directory is removed, the process ends by the signal`, async () => {
      // --seconds 0.5: the two walnut cases before it take that long each (3 was 6 s of waiting a
      // test, 2 was 4 s); the signal lands as its loop of 0.5 s begins (sent within a poll of
      // 10 ms of its WAL's creation), a signal lost in it is lost however long it runs
      const r = await interrupt('commit', 0.5, signal, (f) => f.includes('s.db-wal'));
      expect(r.ended, r.stderr + r.stdout).toEqual([null, signal]);
      expect(r.left).toEqual([]);
      expect(r.stdout).toBe(''); // no rows: the run did not go on to its end
    }, 90_000);
  }

  it('SIGINT during the checksum case: the directory is removed, the process ends by the signal', async () => {
    const r = await interrupt('checksum', 1, 'SIGINT', () => true); // its directory exists: the checksum loops run
    expect(r.ended, r.stderr + r.stdout).toEqual([null, 'SIGINT']);
    expect(r.left).toEqual([]);
    expect(r.stdout).toBe('');
  }, 60_000);
});
