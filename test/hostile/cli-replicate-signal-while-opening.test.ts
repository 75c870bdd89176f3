// `walnut replicate` listened for SIGINT/SIGTERM/SIGHUP only once its store and replication were
// open: a signal while the store opened had no listener and ended the process by its default
// action, the store's -wal and -shm left behind as a crash leaves them. Now one listener serves
// the whole command: a signal heard before the replication runs closes the store as the last
// connection (its -wal checkpointed into the database and removed), then ends the process by
// that signal (nothing was published). The helper preloaded into the command holds its open()
// for a while after the real open, the event loop free, and the signal comes then.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { Database, sqliteWritesWal } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const slow = path.resolve(__dirname, '..', 'helpers', 'open-slow.js');

describe('walnut replicate signalled while its store opens', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal}: the store is closed as the last connection (no -wal/-shm left, every row in the database) and the process ends by the signal`, async () => {
      const { db } = sqliteWritesWal(dir, signal, 4096, (d) => {
        d.exec('CREATE TABLE t(x)');
        const insert = d.prepare('INSERT INTO t VALUES (?)');
        for (let i = 0; i < 500; i++) insert.run(i);
      });
      expect(fs.existsSync(`${db}-wal`)).toBe(true); // (sqlite3 left its WAL: the open recovers it)
      const mark = path.join(dir, `${signal}.opening`);
      // nobody answers at port 1: the command never gets as far as publishing anything
      const child = spawn(process.execPath, ['-r', slow, bin, 'replicate', db, '--nats', 'nats://127.0.0.1:1', '--stream', 's', '--json'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, WALNUT_TEST_SLOW_MARK: mark, WALNUT_TEST_SLOW_MS: '1500' },
      });
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += d));
      const exited = new Promise<[number | null, string | null]>((resolve) => child.once('exit', (code, sig) => resolve([code, sig])));
      try {
        await until(() => fs.existsSync(mark), 20_000, () => stderr);
        child.kill(signal);
        const outcome = await Promise.race([exited, new Promise<string>((res) => setTimeout(() => res('still running 10 s after the signal'), 10_000))]);
        expect(outcome, stderr).toEqual([null, signal]);
      } finally {
        child.kill('SIGKILL');
      }
      expect(fs.existsSync(`${db}-wal`), 'the -wal of a store closed as the last connection').toBe(false);
      expect(fs.existsSync(`${db}-shm`)).toBe(false);
      const check = new Database(db, { readonly: true });
      try {
        expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(check.prepare('SELECT count(*) AS n, sum(x) AS s FROM t').get()).toEqual({ n: 500, s: (499 * 500) / 2 });
      } finally {
        check.close();
      }
    }, 40_000);
  }
});
