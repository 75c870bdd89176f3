// A follow export stopped by the user takes a last pass: every commit made before the stop is in
// the stream. `walnut export --follow` stopped by SIGINT/SIGTERM/SIGHUP cut its stream where it
// was (destroy()): the commits of the last pass interval, or more while the follow was busy,
// were not in the backup (a CI run: 38 of a python3 writer's commits, made before the SIGTERM,
// missing from `export --follow --force`'s FILE). It now stops as `walnut replicate` does: a last
// pass, the stream ended, exit 0; a second signal cuts it at once (exit 0, as before); an output
// that does not take the last pass within 5 s (a reader that stopped reading) is cut, exit 2
// (WALNUT_IO StopTimeout). createExportStream's Readable has the same stop() for callers of the
// API: resolves once the stream has ended; bad options refused; before the open; beside destroy().
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { createExportStream } from '../../lib/export/stream';
import { restore } from '../../lib/export/restore';
import { commitsInStreamFile as commitsIn } from '../helpers/export-stream';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');

/** A WAL database t(id, v) with `rows` rows (one transaction). */
function database(name: string, rows = 0, blob = 500): string {
  const file = path.join(dir, name);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
  const insert = db.prepare('INSERT INTO t(v) VALUES (randomblob(?))');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run(blob);
  })();
  db.close();
  return file;
}

/** `n` one-row commits by better-sqlite3 (another connection than the export's). */
function insertRows(db: string, n: number): void {
  const writer = new Database(db);
  const insert = writer.prepare('INSERT INTO t(v) VALUES (randomblob(500))');
  for (let i = 0; i < n; i++) insert.run();
  writer.close();
}

async function restoredRows(stream: string | Buffer, name: string): Promise<number> {
  const restored = path.join(dir, name);
  expect(await restore(typeof stream === 'string' ? fs.createReadStream(stream) : stream, restored)).toMatchObject({ stoppedBy: null });
  const check = new Database(restored, { readonly: true });
  try {
    return (check.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
  } finally {
    check.close();
  }
}

function exitOf(child: ChildProcess): Promise<[number | null, string | null]> {
  return new Promise((resolve) => child.once('exit', (code, sig) => resolve([code, sig])));
}

describe('walnut export --follow stopped by a signal', () => {
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    it(`${signal}: commits made before it that the follow had not read yet are in FILE (a last pass), exit 0`, async () => {
      const src = database(`last-${signal}.db`);
      const ark = path.join(dir, `last-${signal}.ark`);
      const exporter = spawn(process.execPath, [bin, 'export', src, '--follow', '-o', ark], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      exporter.stderr!.on('data', (d) => (stderr += d));
      const exited = exitOf(exporter);
      // a commit in FILE: the follow has begun, FILE holds a backup (a signal before that ends
      // the export by the signal, FILE removed: cli-export-follow-new-file-kept)
      await until(() => fs.existsSync(ark) && fs.statSync(ark).size > 0, WAIT_MS, () => ({ stderr })); // the base image is on its way
      insertRows(src, 1);
      await until(() => fs.existsSync(ark) && commitsIn(ark) === 1, WAIT_MS, () => ({ stderr }));
      // stopped, the follow reads nothing: the 200 commits are all made before the signal, and
      // none of them read when it comes (the signal's handler runs before or beside the first
      // pass after SIGCONT; cut there, the stream lacked them)
      exporter.kill('SIGSTOP');
      try {
        insertRows(src, 200);
        exporter.kill(signal);
      } finally {
        exporter.kill('SIGCONT');
      }
      expect(await exited, stderr).toEqual([0, null]);
      expect(stderr).toBe(`walnut export: ${fs.statSync(ark).size} bytes\n`);
      expect(commitsIn(ark)).toBe(201);
      expect(await restoredRows(ark, `last-${signal}-restored.db`)).toBe(201);
    }, 60_000);
  }

  it('--force at scale: a WAL of 16,500+ frames (5 -shm segments) written by another process, commits made while it is stopped; FILE restores to every one', async () => {
    const src = database('scale.db', 100, 100);
    // 16,500 frames of one-row commits by better-sqlite3 with no checkpoint, before the export
    const grow = new Database(src);
    grow.pragma('wal_autocheckpoint = 0');
    const insert = grow.prepare('INSERT INTO t(v) VALUES (randomblob(100))');
    for (let i = 0; i < 16_500; i++) insert.run();
    const ark = path.join(dir, 'scale.ark');
    fs.writeFileSync(ark, 'an old backup');
    const exporter = spawn(process.execPath, [bin, 'export', src, '--follow', '--force', '-o', ark], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    exporter.stderr!.on('data', (d) => (stderr += d));
    const exited = exitOf(exporter);
    try {
      await until(() => fs.readFileSync(ark).subarray(0, 8).toString() === 'ARKHEXP1', WAIT_MS, () => ({ stderr })); // renamed over FILE: caught up
      for (let i = 0; i < 100; i++) insert.run(); // while it follows
      exporter.kill('SIGSTOP');
      try {
        for (let i = 0; i < 300; i++) insert.run();
        exporter.kill('SIGTERM');
      } finally {
        exporter.kill('SIGCONT');
      }
      expect(await exited, stderr).toEqual([0, null]);
    } finally {
      grow.close();
    }
    expect(await restoredRows(ark, 'scale-restored.db')).toBe(100 + 16_500 + 400);
  }, 120_000);

  it('-o FIFO whose reader stops reading once the follow holds a backup: the signal waits 5 s for it, then cuts (exit 2, WALNUT_IO StopTimeout) and the process ends', async () => {
    // (it printed the error, then never ended: its write into the full pipe slept on libuv's
    // thread pool, which process.exit joins; only SIGKILL ended it)
    const src = database('stuck-fifo.db', 20);
    const fifo = path.join(dir, 'stuck.fifo');
    execFileSync('mkfifo', [fifo]);
    // the reader: this test, non-blocking (no thread of it sleeps in an open or a read)
    const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const child = spawn(process.execPath, [bin, 'export', src, '--follow', '-o', fifo], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = exitOf(child);
    try {
      const read: Buffer[] = [];
      const readWhatIsThere = (): void => {
        const chunk = Buffer.alloc(1 << 16);
        for (;;) {
          let n = 0;
          try {
            n = fs.readSync(reader, chunk, 0, chunk.length, null);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return;
            throw e;
          }
          if (n === 0) return;
          read.push(Buffer.from(chunk.subarray(0, n)));
        }
      };
      await until(() => (readWhatIsThere(), read.length > 0), 15000, () => ({ stderr, n: read.length })); // the base image is on its way
      insertRows(src, 1);
      await until(() => (readWhatIsThere(), commitsIn(Buffer.concat(read)) >= 1), 15000, () => ({ stderr, n: Buffer.concat(read).length })); // caught up: a backup
      // no more reads: ~1.2 MB of commits fill the pipe (64 KiB) and the follow's writes wait
      const writer = new Database(src);
      const insert = writer.prepare('INSERT INTO t(v) VALUES (randomblob(4000))');
      for (let i = 0; i < 300; i++) insert.run();
      writer.close();
      await new Promise((r) => setTimeout(r, 300));
      const t0 = performance.now();
      child.kill('SIGTERM');
      expect(await exited, stderr).toEqual([2, null]);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(4500);
      expect(stderr).toMatch(/^walnut: WALNUT_IO: .*did not take its last records within 5000 ms/);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      fs.closeSync(reader);
    }
  }, 60_000);

  it('stdout whose reader stopped reading: a second signal cuts the export at once (exit 0, the summary), and the process ends', async () => {
    // ~8 MB of base image into a pipe nobody reads: the export waits on its output
    const src = database('stalled.db', 2000, 4000);
    const child = spawn(process.execPath, [bin, 'export', src, '--follow'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.pause(); // (its data is never read: the pipe fills)
    const exited = exitOf(child);
    await until(() => child.stdout!.readableLength > 0, WAIT_MS); // its stream has begun (kept unread here)
    await new Promise((r) => setTimeout(r, 300)); // its output full: the base image waits
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGTERM');
    // exit 0 with the summary: cut by the second signal (the first one's wait ends in exit 2)
    expect(await exited, stderr).toEqual([0, null]);
    expect(stderr).toMatch(/^walnut export: \d+ bytes\n$/);
  }, 60_000);
});

describe("createExportStream's stop()", () => {
  it('ends a follow after a last pass: every commit made before the call is in the stream, then it ends', async () => {
    const src = database('api.db');
    const stream = createExportStream(src, { follow: true, pollMs: 60_000 }); // no pass of its own before stop()
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    const caughtUp = new Promise((resolve) => stream.once('caughtUp', resolve));
    await caughtUp;
    insertRows(src, 30);
    await stream.stop();
    expect(stream.readableEnded).toBe(true);
    const ark = Buffer.concat(chunks);
    expect(commitsIn(ark)).toBe(30);
    expect(await restoredRows(ark, 'api-restored.db')).toBe(30);
    await stream.stop(); // once ended: resolves again
  });

  it('called before the export began (the database still opening): the base image and the WAL as of then, and the end', async () => {
    const src = database('early.db', 5);
    insertRows(src, 7);
    const stream = createExportStream(src, { follow: true });
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    await stream.stop();
    expect(await restoredRows(Buffer.concat(chunks), 'early-restored.db')).toBe(12);
  });

  it('bad options are refused (WALNUT_INVALID_ARGUMENT) and the follow goes on; a timeout past which a reader that stopped reading is cut (WALNUT_IO StopTimeout)', async () => {
    const src = database('opts.db', 2000, 4000);
    const stream = createExportStream(src, { follow: true });
    for (const bad of [5000, { timeoutMs: 0 }, { timeoutMs: 1.5 }, { timeoutMs: 2 ** 31 }, { timeout: 10 }]) {
      await expectRejectsWalnut(stream.stop(bad as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    }
    expect(stream.destroyed).toBe(false);
    // nobody reads it: its ~8 MB base image waits on the reader
    const errors: unknown[] = [];
    stream.on('error', (e) => errors.push(e));
    await expectRejectsWalnut(stream.stop({ timeoutMs: 300 }), 'WALNUT_IO', { reason: 'StopTimeout' });
    expect(stream.destroyed).toBe(true);
    expect(errors).toHaveLength(1);
  });

  it('called many times before the end (a handler per signal, a retry loop): each resolves, and the stream gets no listener per call (MaxListenersExceededWarning at the 11th)', async () => {
    const src = database('many.db', 5);
    const stream = createExportStream(src, { follow: true });
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    const warnings: Error[] = [];
    const onWarning = (w: Error & { emitter?: unknown }): void => {
      if (w.emitter === stream) warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      const stops = Array.from({ length: 20 }, (_, i) => stream.stop(i % 2 === 0 ? undefined : { timeoutMs: 60_000 }));
      expect(stream.listenerCount('close')).toBeLessThan(5);
      await Promise.all(stops);
      await new Promise((r) => setImmediate(r)); // (a warning is emitted on the next tick)
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map((w) => w.name)).toEqual([]);
    expect(await restoredRows(Buffer.concat(chunks), 'many-restored.db')).toBe(5);
  });

  it('destroyed while it stops: stop() rejects WALNUT_CLOSED (no other error, nothing unhandled)', async () => {
    const src = database('destroyed.db', 2000, 4000);
    const stream = createExportStream(src, { follow: true });
    stream.on('error', () => undefined);
    const stopped = stream.stop();
    stream.destroy();
    await expectRejectsWalnut(stopped, 'WALNUT_CLOSED');
    await expectRejectsWalnut(stream.stop(), 'WALNUT_CLOSED');
  });
});
