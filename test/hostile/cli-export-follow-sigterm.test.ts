// `walnut export --follow` ran "until interrupted", but only SIGINT ended it: SIGTERM (what
// kill, timeout, systemd and docker stop send) killed the process outright, so the export never
// ended as it does on SIGINT: no summary (--json printed nothing), exit by signal instead of 0,
// and its connection never closed as the last one (its -wal and -shm left behind). SIGTERM now
// ends it as SIGINT does (walnut replicate and replica already stop on either).
// To stdout (`walnut export app.db --follow | ssh backup "cat > app.ark"`), an interrupted export
// printed its summary, then 'walnut: WALNUT_IO: Premature close', and exited 2: pipeline()
// destroys stdout with the cut stream's premature close, and that 'error' counted as a failed
// output (6 of 6 runs, SIGTERM and SIGINT, breaker2). It exits 0 now, as to -o FILE.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { restore } from '../../lib/export/restore';
import { commitsInStreamFile as commitsIn } from '../helpers/export-stream';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');

describe('walnut export --follow and SIGTERM', () => {
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    it(`${signal} ends the export as an interruption: exit 0, the --json summary, every commit in the stream, no -wal/-shm left`, async () => {
      const src = path.join(dir, `${signal}.db`);
      const db = new Database(src);
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
      db.close();
      const ark = path.join(dir, `${signal}.ark`);
      const exporter = spawn(process.execPath, [bin, 'export', src, '--follow', '-o', ark, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      exporter.stdout!.on('data', (d) => (stdout += d));
      exporter.stderr!.on('data', (d) => (stderr += d));
      const exited = new Promise<[number | null, string | null]>((resolve) => exporter.once('exit', (code, sig) => resolve([code, sig])));
      try {
        await until(() => fs.existsSync(ark) && fs.statSync(ark).size > 0, WAIT_MS, () => ({ stderr })); // the base image is out: the follow has begun
        const before = commitsIn(ark);
        const writer = new Database(src);
        const insert = writer.prepare('INSERT INTO t(v) VALUES (randomblob(500))');
        for (let i = 0; i < 50; i++) insert.run();
        writer.close();
        await until(() => commitsIn(ark) >= before + 50, WAIT_MS, () => ({ commits: commitsIn(ark), stderr }));
      } finally {
        exporter.kill(signal);
      }
      expect(await exited, stderr).toEqual([0, null]);
      expect(JSON.parse(stdout)).toEqual({ bytes: fs.statSync(ark).size });
      // the export's connection closed as the last one: checkpointed, its files removed
      expect(fs.existsSync(`${src}-wal`)).toBe(false);
      expect(fs.existsSync(`${src}-shm`)).toBe(false);
      const restored = path.join(dir, `${signal}-restored.db`);
      expect(await restore(fs.createReadStream(ark), restored)).toMatchObject({ stoppedBy: null });
      const check = new Database(restored, { readonly: true });
      expect(check.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 50 });
      check.close();
    }, 60_000);
  }

  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    it(`to stdout (a pipe), ${signal} ends it the same way: exit 0, the summary and no error on stderr, every commit in what the pipe carried`, async () => {
      const src = path.join(dir, `stdout-${signal}.db`);
      const db = new Database(src);
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
      db.close();
      const exporter = spawn(process.execPath, [bin, 'export', src, '--follow'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const chunks: Buffer[] = [];
      let stderr = '';
      exporter.stdout!.on('data', (d: Buffer) => chunks.push(d));
      exporter.stderr!.on('data', (d) => (stderr += d));
      const exited = new Promise<[number | null, string | null]>((resolve) => exporter.once('exit', (code, sig) => resolve([code, sig])));
      const closed = new Promise((resolve) => exporter.stdout!.once('close', resolve));
      try {
        await until(() => chunks.length > 0, WAIT_MS, () => ({ stderr })); // the base image is on its way: the follow has begun
        const before = commitsIn(Buffer.concat(chunks));
        const writer = new Database(src);
        const insert = writer.prepare('INSERT INTO t(v) VALUES (randomblob(500))');
        for (let i = 0; i < 50; i++) insert.run();
        writer.close();
        await until(() => commitsIn(Buffer.concat(chunks)) >= before + 50, WAIT_MS, () => ({ commits: commitsIn(Buffer.concat(chunks)), stderr }));
      } finally {
        exporter.kill(signal);
      }
      expect(await exited, stderr).toEqual([0, null]);
      await closed;
      const ark = Buffer.concat(chunks);
      expect(stderr).toBe(`walnut export: ${ark.length} bytes\n`);
      const restored = path.join(dir, `stdout-${signal}-restored.db`);
      expect(await restore(ark, restored)).toMatchObject({ stoppedBy: null });
      const check = new Database(restored, { readonly: true });
      expect(check.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 50 });
      check.close();
    }, 60_000);
  }
});
