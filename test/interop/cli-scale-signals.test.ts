// The walnut command at scale beside a sqlite3 writer (python3's sqlite3, SQLite's own library):
// a WAL past 16,000 frames (4+ -shm segments, 512-byte pages), then the writer going on with a
// RESTART, TRUNCATE or PASSIVE checkpoint of its own every 3,000 commits. inspect, verify and a
// one-shot export each give a consistent answer (the export restores to a prefix of the writer's
// rows, integrity ok), and SIGINT, SIGTERM and SIGHUP sent in the middle of export -o, verify and
// restore (the process frozen with SIGSTOP once its work is under way, so the signal lands
// mid-work at any machine speed) leave no temporary file, no partial output, and the database
// whole: the writer never fails, and SQLite's integrity_check is ok with every row it committed.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { shmMxFrame } from '../helpers/large-wal';
import { processHasOpen, spawnOutput } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args], { timeout: WAIT_MS });
const FOUR_SEGMENTS = 16_000;

/**
 * The writer: 512-byte pages, a 30 MB table written first in one transaction and checkpointed
 * (the exports and restores take long enough to be caught mid-way), then one row per commit
 * (n, 300 random bytes; an index on n) until STOP exists. Its own checkpoints (RESTART, TRUNCATE,
 * PASSIVE in turn, every 3,000 commits) begin once GO exists. Prints the last n. The commits up
 * to FOUR_SEGMENTS frames run at synchronous NORMAL (no fsync per commit: at FULL the fill was
 * ~3,500 syncs, 9 s of a disk's waits), the rest at FULL as before: the pace beside the commands.
 */
const WRITER = `
import os, sqlite3, sys, time
db, go, stop, filled = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = sqlite3.connect(db, timeout=60, isolation_level=None)
c.execute('PRAGMA page_size=512'); c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0')
c.execute('PRAGMA synchronous=NORMAL')
c.execute('CREATE TABLE bulk(v)')
c.execute('BEGIN'); c.executemany('INSERT INTO bulk VALUES (randomblob(2000))', ((),) * 15000); c.execute('COMMIT')
c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
c.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER, v BLOB)'); c.execute('CREATE INDEX t_n ON t(n)')
print('ready', flush=True)
n, k = 0, 0
full = False
while not os.path.exists(stop):
    n += 1
    c.execute('INSERT INTO t(n, v) VALUES (?, randomblob(300))', (n,))
    if not full and os.path.getsize(db + '-wal') > 32 + filled * (24 + 512):
        c.execute('PRAGMA synchronous=FULL'); full = True
    if n % 3000 == 0 and os.path.exists(go):
        c.execute('PRAGMA wal_checkpoint(%s)' % ('RESTART', 'TRUNCATE', 'PASSIVE')[k % 3]); k += 1
print(n, flush=True)
`;

/** What a directory holds, but the database's own files. */
const others = (db: string) => fs.readdirSync(dir).filter((f) => !f.startsWith(path.basename(db))).sort();

/** Rows of t as SQLite reads `file`: their count, their largest n, and the integrity check. */
async function rowsOf(file: string): Promise<{ count: number; max: number; integrity: string }> {
  const r = await spawnOutput('python3', ['-c', "import sqlite3, sys, json; c = sqlite3.connect(sys.argv[1]); print(json.dumps({'count': c.execute('SELECT count(*) FROM t').fetchone()[0], 'max': c.execute('SELECT coalesce(max(n), 0) FROM t').fetchone()[0], 'integrity': c.execute('PRAGMA integrity_check').fetchone()[0]}))", file]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { count: number; max: number; integrity: string };
}

/** Runs walnut `args`, freezes it once `underWay(pid)`, sends `signal`, lets it go on; resolves with how it ended. */
async function interrupted(args: string[], signal: NodeJS.Signals, underWay: (pid: number) => boolean): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; caught: boolean }> {
  const child: ChildProcess = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const ended = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, sig) => resolve([code, sig])));
  let caught = false;
  try {
    await until(() => child.exitCode !== null || child.signalCode !== null || underWay(child.pid!), WAIT_MS, () => stderr);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGSTOP');
      caught = child.exitCode === null;
      child.kill(signal);
      child.kill('SIGCONT');
    }
    const [code, sig] = await ended;
    return { code, signal: sig, stderr, caught };
  } finally {
    child.kill('SIGKILL');
  }
}

describe('walnut commands beside a sqlite3 writer, past 16,000 WAL frames', () => {
  it('inspect, verify and export agree with SQLite; SIGINT/SIGTERM/SIGHUP mid-command leave no temporary file and the database whole', async () => {
    const db = path.join(dir, 'app.db');
    const go = path.join(dir, 'go');
    const stop = path.join(dir, 'stop');
    const writer = spawn('python3', ['-c', WRITER, db, go, stop, String(FOUR_SEGMENTS)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    writer.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    writer.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const writerExit = new Promise<number | null>((resolve) => writer.once('exit', (code) => resolve(code)));
    try {
      await until(() => out.includes('ready') || writer.exitCode !== null, WAIT_MS, () => err);
      await until(() => shmMxFrame(db) > FOUR_SEGMENTS || writer.exitCode !== null, WAIT_MS, () => err);
      expect(writer.exitCode, err).toBe(null);

      // no checkpoint yet: the WAL holds 16,000+ frames for each of these
      const seen = await walnut('inspect', db, '--json');
      expect(seen.status, seen.stderr).toBe(0);
      const report = JSON.parse(seen.stdout) as { walFrames: number; commits: number; walHeaderStatus: string; shm: { headerValid: boolean } };
      expect(report.walFrames).toBeGreaterThan(FOUR_SEGMENTS);
      expect(report).toMatchObject({ walHeaderStatus: 'ok', shm: { headerValid: true } });
      expect(report.commits).toBeGreaterThan(0);
      const checked = await walnut('verify', db, '--json');
      expect(checked.status, checked.stdout + checked.stderr).toBe(0);
      expect(JSON.parse(checked.stdout)).toMatchObject({ ok: true, issues: [] });
      const ark = path.join(dir, 'whole.ark');
      const exported = await walnut('export', db, '-o', ark, '--json');
      expect(exported.status, exported.stderr).toBe(0);
      const restored = path.join(dir, 'whole.db');
      expect((await walnut('restore', ark, restored)).status).toBe(0);
      const back = await rowsOf(restored);
      expect(back.integrity).toBe('ok');
      expect(back.count).toBe(back.max); // a prefix of the writer's rows: 1..max, each once
      expect(back.max).toBeGreaterThanOrEqual(report.commits - 2); // (the bulk table and t's creation are commits too)

      // the writer checkpoints on its own from now on
      fs.writeFileSync(go, '');
      const before = others(db);
      const outcomes: string[] = [];
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
        // export -o X: under way once X has bytes; stopped, X (its own) is removed
        const x = path.join(dir, `x-${signal}.ark`);
        const e = await interrupted(['export', db, '-o', x], signal, () => fs.existsSync(x) && fs.statSync(x).size > 0);
        outcomes.push(`export ${signal}: ${e.signal ?? e.code}`);
        if (e.signal !== null) {
          expect(e.signal).toBe(signal);
          expect(fs.existsSync(x), `export ${signal}`).toBe(false);
        } else {
          expect(e.code, e.stderr).toBe(0); // it finished before the signal: a whole stream
          expect((await walnut('restore', x, path.join(dir, `x-${signal}.db`))).status).toBe(0);
          fs.rmSync(x);
          fs.rmSync(path.join(dir, `x-${signal}.db`));
        }
        // verify: under way once it has opened the WAL a second time (its own scan)
        const v = await interrupted(['verify', db, '--json'], signal, (pid) => processHasOpen(pid, `${fs.realpathSync(db)}-wal`));
        outcomes.push(`verify ${signal}: ${v.signal ?? v.code}`);
        expect(v.signal ?? (v.code === 0 ? signal : v.code), v.stderr).toBe(signal);
        // restore: under way once its hidden temporary file beside the target exists
        const target = path.join(dir, `r-${signal}.db`);
        const r = await interrupted(['restore', ark, target], signal, () => fs.readdirSync(dir).some((f) => f.startsWith(`.r-${signal}.db.restore-`)));
        outcomes.push(`restore ${signal}: ${r.signal ?? r.code}`);
        if (r.signal !== null) {
          expect(r.signal).toBe(signal);
          expect(fs.existsSync(target), `restore ${signal}`).toBe(false);
        } else {
          expect(r.code, r.stderr).toBe(0);
          fs.rmSync(target);
        }
        expect(others(db), `${signal}: ${outcomes.join(', ')}`).toEqual(before); // nothing left: no .restore-, no partial export
      }
      // (measured: all 9 ended by their signal, frozen mid-work; one that finished first is checked whole above)
      expect(outcomes.filter((o) => /: SIG[A-Z]+$/.test(o)).length, outcomes.join(', ')).toBeGreaterThan(0);
    } finally {
      fs.writeFileSync(stop, '');
      const code = await writerExit;
      expect(code, err).toBe(0);
    }
    const last = Number(out.trim().split('\n').pop());
    const whole = await rowsOf(db);
    expect(whole).toEqual({ count: last, max: last, integrity: 'ok' });
  }, 180_000);
});
