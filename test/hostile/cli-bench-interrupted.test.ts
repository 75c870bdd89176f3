// `walnut bench` measures in a directory of its own under the system's temporary directory
// (walnut-bench-XXXXXX, its databases with their -wal and -shm), removed when the run ends. A
// run stopped by SIGINT (Ctrl-C: `--seconds 60` was too long) or SIGTERM died by the signal
// with that directory left behind (25 MB after 2 s of `bench commit`, breaker cli), and every
// such run left another. Now an interrupted bench removes its directory, then ends by the signal.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');

describe('walnut bench interrupted by a signal', () => {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    it(`${signal}: its temporary directory is removed, the process ends by the signal`, async () => {
      const tmp = fs.mkdtempSync(path.join(dir, `${signal}-`)); // the bench's TMPDIR: what it leaves is seen here
      const bench = spawn(process.execPath, [bin, 'bench', 'commit', '--seconds', '60'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: tmp } });
      let stderr = '';
      bench.stderr!.on('data', (d) => (stderr += d));
      const exited = new Promise<[number | null, string | null]>((resolve) => bench.once('exit', (code, sig) => resolve([code, sig])));
      const databases = (): string[] => fs.readdirSync(tmp).flatMap((d) => fs.readdirSync(path.join(tmp, d)));
      try {
        await until(() => databases().includes('a.db-wal'), 30_000, () => ({ stderr, files: fs.readdirSync(tmp) })); // committing
      } finally {
        bench.kill(signal);
      }
      expect(await exited, stderr).toEqual([null, signal]);
      expect(fs.readdirSync(tmp), stderr).toEqual([]); // (stderr: the bench's 'could not remove' line says why)
    }, 60_000);
  }
});
