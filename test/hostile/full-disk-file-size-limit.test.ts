// Hostile: a file-size limit (RLIMIT_FSIZE, `ulimit -f`), set for a child process only. A write
// past it fails with EFBIG (part of it may land first: a short write) and raises SIGXFSZ, which
// Node ignores (the child survives every one). A WAL append that grows the file writes 1 MiB of
// zeros after its frames; when they do not fit, the frames stand alone and the file is extended
// over a hole, as on a full disk (full-disk-wal-growth) -- but under the limit the extension
// fails too, and the append still took the size it had asked for (growTo) as the file's: the
// next append's window check found the file shorter than that and refused (WALNUT_BUSY,
// StaleAppendWindow), so every commit was re-read and retried, and wrote zeros up to the limit
// again, each one (two SIGXFSZ a commit). Now the native append reads the file's size back and
// the WAL stops preallocating until it restarts: commits whose frames fit go on, one whose frames
// do not fails WALNUT_FULL with errno EFBIG and is never visible, and once a TRUNCATE checkpoint
// makes room, commits go in again. A zero-ahead (option zeroAhead, past 8 MiB of WAL) that fails
// at the limit stops there too, instead of failing again after every commit.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { HELPERS, pythonSqlite, spawnOutput } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const LIMIT_KIB = 256; // bash's `ulimit -f` counts 1024-byte blocks
const PS = 4096;
const FRAME = 24 + PS;

/** file-size-limit-child.js `role` on `file`, under a limit of `kib` KiB; its JSON line (it must exit 0, no signal, no stderr). */
async function underLimit<T>(role: string, file: string, kib = LIMIT_KIB): Promise<T> {
  const r = await spawnOutput('bash', ['-c', `ulimit -f ${kib} && exec "$0" "$@"`, process.execPath, path.join(HELPERS, 'file-size-limit-child.js'), role, file], { timeout: 60_000 });
  expect({ status: r.status, signal: r.signal, stderr: r.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
  const out = JSON.parse(r.stdout);
  expect(out.crashed).toBeUndefined();
  return out as T;
}

describe('a file-size limit (ulimit -f) below the WAL’s next append', () => {
  it('WalFile: one-frame appends go on while their frames fit (no stale window), the next fails WALNUT_FULL with errno EFBIG', async () => {
    const wal = path.join(dir, 'a.db-wal');
    const out = await underLimit<{ appends: string[]; size: number; recovered: number }>('wal', wal);
    const fit = Math.floor((LIMIT_KIB * 1024 - 32) / FRAME);
    // was ['ok', 'WALNUT_BUSY/StaleAppendWindow/']: the first append's file taken as 1 MiB longer than it is
    expect(out.appends).toEqual([...Array(fit).fill('ok'), 'WALNUT_FULL//27']);
    expect(out.size).toBeLessThanOrEqual(LIMIT_KIB * 1024);
    expect(out.recovered).toBe(fit); // the failed one is not in the WAL
  });

  it('walnut/sql: inserts fail WALNUT_FULL (EFBIG) once, promptly, each time; the acknowledged rows are intact for python3; room again after a TRUNCATE checkpoint', async () => {
    const db = path.join(dir, 'b.db');
    const out = await underLimit<{ rows: number; failures: string[]; visible: number; checkpoint: string; after: string; walBytes: number; sigxfsz: number }>('sql', db);
    expect(out.rows).toBeGreaterThan(10);
    expect(out.failures).toEqual(Array(4).fill('WALNUT_FULL//27')); // settled, none a 'hang'
    expect(out.visible).toBe(out.rows - 1); // the failed inserts are not there
    expect(out.checkpoint).toBe('ok');
    expect(out.after).toBe('ok');
    // a write past the limit: one refused growth per WAL generation (two here), one per failed
    // insert; was two a commit (the zeros written up to the limit, then the extension refused)
    expect(out.sigxfsz).toBeLessThanOrEqual(out.failures.length + 2);
    // the child left its files as they were (no close): python3's sqlite3 recovers them
    expect(await pythonSqlite(db, "print(c.execute('PRAGMA integrity_check').fetchone()[0]); print(c.execute('SELECT count(*), sum(length(v)) FROM t').fetchone())")).toBe(`ok\n(${out.rows}, ${out.rows * 3000})`);
  });

  it('zeroAhead: the zeroing stops at the limit, commits go on until their frames pass it', async () => {
    const out = await underLimit<{ commits: number; failures: string[]; sigxfsz: number }>('zero-ahead', path.join(dir, 'c.db'), 12_000);
    expect(out.commits).toBe(Math.floor((12_000 * 1024 - 32) / (4 * FRAME)));
    expect(out.failures).toEqual(Array(4).fill('WALNUT_FULL//27'));
    // one per failed commit, the zeroing's at the limit, and at most one append's growth refused
    // while that zeroing ran (either stops both); was 24 in a run: the zeroing failed again and again
    expect(out.sigxfsz).toBeLessThanOrEqual(out.failures.length + 2);
  });
});
