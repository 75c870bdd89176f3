/**
 * cli/bench.ts — `walnut bench`: small side-by-side runs a user can do on their own machine.
 * commit: durable one-page commits, walnut at 1 and 64 committers, better-sqlite3 FULL when it
 * is installed; checksum: walnut's checksums vs Buffer.copy. The full suite is `npm run bench`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { checksum, open, WalnutError } from '../index';
import { sleepSync } from '../io/sleep-sync';
import { onStopSignal } from './signals';

const { crc32c, sqliteWalChecksum, xxh3_128 } = checksum;

type Row = Record<string, unknown>;

async function commitRate(file: string, committers: number, seconds: number): Promise<number> {
  const store = await open(file);
  const data = Buffer.alloc(4096, 1);
  const deadline = performance.now() + seconds * 1000;
  let count = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: committers }, async (_, w) => {
    for (let i = 0; performance.now() < deadline; i++) {
      await store.commit([{ pgno: 2 + ((w * 7919 + i) % 5000), data }]);
      count++;
    }
  }));
  const rate = count / ((performance.now() - t0) / 1000);
  await store.close();
  return rate;
}

const SCENARIOS = ['commit', 'checksum', 'all'];

export async function runBench(scenario: string, seconds: number): Promise<Row[]> {
  // refused before any work: an unknown scenario ran nothing, NaN seconds measured 0 commits/s
  if (!SCENARIOS.includes(scenario)) throw new WalnutError(`WALNUT_INVALID_ARGUMENT: unknown scenario ${JSON.stringify(scenario)} (commit, checksum or all)`, { code: 'WALNUT_INVALID_ARGUMENT', reason: 'scenario' });
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) throw new WalnutError('WALNUT_INVALID_ARGUMENT: --seconds must be a number of seconds above 0 (at most 3600)', { code: 'WALNUT_INVALID_ARGUMENT', reason: 'seconds' });
  const rows: Row[] = [];
  // stopped by SIGINT, SIGTERM or SIGHUP (./signals): the directory (databases of tens of MB) is removed, then the
  // signal ends the process as it would have (it was left behind in the temporary directory).
  // The handler is in place before the directory exists and until it is gone: a signal caught
  // while it was not (the run's last synchronous stretch, before its finally) was lost, and
  // the run went on to print its rows and exit 0
  let dir: string | null = null;
  const interrupted = (signal: NodeJS.Signals): void => {
    try {
      if (dir !== null) removeWhileWritten(dir);
    } catch (e) {
      process.stderr.write(`walnut bench: could not remove ${dir}: ${(e as Error).message}\n`);
    }
    process.kill(process.pid, signal);
  };
  const stopListening = onStopSignal(interrupted);
  try {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walnut-bench-'));
    if (scenario === 'all' || scenario === 'commit') {
      rows.push({ scenario: 'commit', system: 'walnut full, 1 committer', value: Math.round(await commitRate(path.join(dir, 'a.db'), 1, seconds)), unit: 'commits/s' });
      rows.push({ scenario: 'commit', system: 'walnut full, 64 committers', value: Math.round(await commitRate(path.join(dir, 'b.db'), 64, seconds)), unit: 'commits/s' });
      let Database: (new (f: string) => { pragma(s: string): unknown; exec(s: string): void; prepare(s: string): { run(...a: unknown[]): unknown }; close(): void }) | null = null;
      try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        Database = require('better-sqlite3');
      } catch {
        Database = null;
      }
      if (Database) {
        const db = new Database(path.join(dir, 's.db'));
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = FULL');
        db.exec('CREATE TABLE t(v BLOB)');
        const ins = db.prepare('INSERT INTO t VALUES (?)');
        const data = Buffer.alloc(4096, 1);
        const deadline = performance.now() + seconds * 1000;
        let n = 0;
        const t0 = performance.now();
        for (let turn = performance.now() + TURN_MS; performance.now() < deadline; ) {
          ins.run(data);
          n++;
          if (performance.now() >= turn) {
            await signalsHeard(); // a signal's handler runs here (the loop held it until its end)
            turn = performance.now() + TURN_MS;
          }
        }
        rows.push({ scenario: 'commit', system: 'better-sqlite3 FULL', value: Math.round(n / ((performance.now() - t0) / 1000)), unit: 'commits/s' });
        db.close();
      } else {
        rows.push({ scenario: 'commit', system: 'better-sqlite3 FULL', value: 'not installed', unit: '' });
      }
    }
    if (scenario === 'all' || scenario === 'checksum') {
      const data = Buffer.alloc(1 << 20, 7);
      const copy = Buffer.alloc(1 << 20);
      // 300 ms each, in turns of TURN_MS (the time between them not counted)
      const gbps = async (fn: () => unknown): Promise<number> => {
        let ms = 0;
        let n = 0;
        while (ms < 300) {
          const t0 = performance.now();
          let t = t0;
          for (; t - t0 < TURN_MS && ms + (t - t0) < 300; t = performance.now()) {
            fn();
            n++;
          }
          ms += t - t0;
          await signalsHeard();
        }
        return +((n * data.length) / (ms / 1000) / 1e9).toFixed(2);
      };
      rows.push({ scenario: 'checksum', system: 'xxh3_128 (1 MiB)', value: await gbps(() => xxh3_128(data)), unit: 'GB/s' });
      rows.push({ scenario: 'checksum', system: 'crc32c (1 MiB)', value: await gbps(() => crc32c(data)), unit: 'GB/s' });
      rows.push({ scenario: 'checksum', system: 'sqlite WAL checksum (1 MiB)', value: await gbps(() => sqliteWalChecksum(data)), unit: 'GB/s' });
      rows.push({ scenario: 'checksum', system: 'Buffer.copy (1 MiB)', value: await gbps(() => data.copy(copy)), unit: 'GB/s' });
    }
    return rows;
  } finally {
    if (dir !== null) fs.rmSync(dir, { recursive: true, force: true });
    await signalsHeard(); // one caught during the run's last stretch: its handler runs (and ends the process)
    stopListening();
  }
}

/**
 * Removes `dir` while the store's I/O thread may still be creating files in it (an open()
 * under way makes its -wal, then its -shm). rmSync's own maxRetries does not do: it retries only
 * the last rmdir, with the children it listed before, so a file made after that listing stayed
 * and every retry failed ENOTEMPTY (the directory was left: cli-bench-interrupted, under load).
 * Each try here lists the directory again; the thread makes no file once its open() is done.
 */
function removeWhileWritten(dir: string): void {
  for (let tries = 1; ; tries++) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOTEMPTY' || tries === 50) throw e;
      sleepSync(20);
    }
  }
}

/** How long a synchronous loop of the bench runs before it gives the event loop a turn (ms). */
const TURN_MS = 50;

/**
 * A turn of the event loop in which a signal caught by now has its listeners called: libuv
 * reports it in a poll phase, which may be the next iteration's (the one under way may have
 * polled before it came), so two check phases are passed.
 */
async function signalsHeard(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
