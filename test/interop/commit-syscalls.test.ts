// What a commit asks of the kernel, counted with strace in a real child process (issue #19):
// no stat of any kind on the commit path (on ext4 with multigrain timestamps a stat makes the
// next fdatasync write the inode too: reference/commit-profile.md), and one WRITE lock round
// for a run of back-to-back batches rather than one per batch, and no -shm size check per batch
// (the mapping's touches are guarded instead); a lone committer writes and syncs on its own
// thread (no I/O-thread round trip), concurrent committers never block it so; an append whose
// wal-index header is still the one this connection published reads only the WAL's header (the
// append window's re-check is header and size: pread, lseek; not the next slot's pread); a WAL past 8 MiB
// is zeroed ahead (written back and synced) by a thread that writes no commit, through a
// descriptor of its own; a WAL restart syncs its new header before the first frame after it.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { SHM_LOCK } from '../../lib/format/shm-header';
import { HELPERS, spawnOutput } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;
const hasStrace = spawnSync('strace', ['-V']).status === 0;

interface Traced {
  /** The system calls made between the child's markers, every thread included. */
  lines: string[];
  /** The child's main (JavaScript) thread: its thread id is the process id. */
  pid: number;
  batches: number;
  commits: number;
}

// (async: a test's strace runs, spawnSync'd, held the vitest worker's event loop 52 s at load 15,
// near the 60 s of its RPC timeout)
async function traceCommits(options: Record<string, unknown>, loops: number, each: number, calls = '%%stat,fcntl,lseek,write,pread64,pwritev,fdatasync,sync_file_range'): Promise<Traced> {
  const file = path.join(dir, `s${n}.db`);
  const trace = path.join(dir, `s${n++}.strace`);
  const r = await spawnOutput('strace', ['-f', '-qq', '-y', '-o', trace, '-e', `trace=${calls}`, process.execPath, path.join(HELPERS, 'commit-syscalls-child.js'), file, String(loops), String(each), JSON.stringify(options)]);
  expect(r.status, r.stdout + r.stderr).toBe(0);
  const lines = fs.readFileSync(trace, 'utf8').split('\n');
  const from = lines.findIndex((l) => l.includes('<<commits>>'));
  const to = lines.findIndex((l) => l.includes('<</commits>>'));
  expect(from).toBeGreaterThan(0);
  expect(to).toBeGreaterThan(from);
  return { lines: lines.slice(from + 1, to), pid: Number(/^(\d+)/.exec(lines[0]!)![1]), ...JSON.parse(r.stdout) };
}

const named = (t: Traced, re: RegExp): number => t.lines.filter((l) => re.test(l)).length;

if (!hasStrace) {
  describe('the commit path under strace', () => {
    it.skip('skipped: strace is not installed (apt-get install -y strace)', () => undefined);
  });
}

describe.skipIf(!hasStrace)('the commit path under strace', () => {
  it('makes no stat call (fstat, statx, newfstatat) on the WAL, the -shm or the database file', async () => {
    const t = await traceCommits({ autoCheckpoint: false }, 16, 12);
    expect(named(t, /fdatasync\(/)).toBeGreaterThanOrEqual(t.batches); // the commits were traced
    expect(named(t, /^\d+\s+(?:<\.\.\. )?\w*stat\w*[( ]/)).toBe(0);
  });

  it('takes WRITE once for a run of back-to-back batches, not once per batch', async () => {
    const t = await traceCommits({ autoCheckpoint: false }, 32, 12);
    expect(t.commits).toBe(32 * 12);
    // the OFD write lock on the -shm's WRITE byte: F_OFD_SETLK, F_WRLCK, l_start = 120, l_len = 1
    const writeLocks = named(t, new RegExp(`F_OFD_SETLK, \\{l_type=F_WRLCK, l_whence=SEEK_SET, l_start=${SHM_LOCK.WRITE}, l_len=1`));
    expect(t.batches).toBeGreaterThanOrEqual(4);
    expect(writeLocks).toBeGreaterThanOrEqual(1);
    // a run spans at least two batches while the queue stays full (group-committer.ts)
    expect(writeLocks).toBeLessThanOrEqual(Math.ceil(t.batches / 2));
  });

  it('a commit lane\'s leader keeps WRITE while it waits for the members whose commits its last batch settled (their resubmits join its next batch): once for a run of batches, not once per batch', async () => {
    // 4 stores of one thread share the lane: the first leads, the others' commits go through it
    const t = await traceCommits({ autoCheckpoint: false, laneStores: 4 }, 32, 12);
    expect(t.commits).toBe(32 * 12); // the leader's committer wrote every store's commits
    const writeLocks = named(t, new RegExp(`F_OFD_SETLK, \\{l_type=F_WRLCK, l_whence=SEEK_SET, l_start=${SHM_LOCK.WRITE}, l_len=1`));
    expect(t.batches).toBeGreaterThanOrEqual(4);
    expect(writeLocks).toBeGreaterThanOrEqual(1);
    expect(writeLocks).toBeLessThanOrEqual(Math.ceil(t.batches / 2));
  });

  it('checks the -shm size (lseek) once per WRITE run, not per batch: a lone committer none per commit', async () => {
    // -y prints each descriptor's path: lseek(20</tmp/.../s3.db-shm>, 0, SEEK_END)
    const shmSeeks = (t: Traced): number => named(t, /lseek\(\d+<[^>]*-shm>/);
    const runs = (t: Traced): number => named(t, new RegExp(`F_OFD_SETLK, \\{l_type=F_WRLCK, l_whence=SEEK_SET, l_start=${SHM_LOCK.WRITE}, l_len=1`));
    const lone = await traceCommits({ autoCheckpoint: false }, 1, 40);
    expect(lone.batches).toBe(40);
    expect(named(lone, /fdatasync\(/)).toBe(40);
    expect(shmSeeks(lone)).toBeLessThanOrEqual(runs(lone));
    expect(runs(lone)).toBeLessThan(40);
    const many = await traceCommits({ autoCheckpoint: false }, 32, 12);
    expect(many.batches).toBeGreaterThanOrEqual(4);
    expect(shmSeeks(many)).toBeLessThanOrEqual(runs(many));
  });

  it('an append after this connection\'s own commit reads only the WAL\'s header (one 32-byte pread at 0, one lseek for its size; not the next slot): a lone committer and 32 concurrent ones', async () => {
    // the WAL's own descriptors (-y prints the path): the commit's and the background lane's
    const walReads = (t: Traced): number => named(t, /pread64\(\d+<[^>]*-wal>/);
    const walHeaderReads = (t: Traced): number => named(t, /pread64\(\d+<[^>]*-wal>, .*, 32, 0\) = 32$/);
    const walSeeks = (t: Traced): number => named(t, /lseek\(\d+<[^>]*-wal>/);
    const lone = await traceCommits({ autoCheckpoint: false }, 1, 40);
    expect(lone.batches).toBe(40);
    expect(named(lone, /pwritev\(\d+<[^>]*-wal>/)).toBe(40); // the commits were traced
    expect([walReads(lone), walHeaderReads(lone)]).toEqual([40, 40]);
    expect(walSeeks(lone)).toBe(40);
    const many = await traceCommits({ autoCheckpoint: false }, 32, 12);
    expect(many.commits).toBe(32 * 12);
    expect([walReads(many), walHeaderReads(many)]).toEqual([many.batches, many.batches]);
    expect(walSeeks(many)).toBe(many.batches);
  });

  it('a lone committer writes and syncs on the JavaScript thread; 32 concurrent committers never do', async () => {
    const lone = await traceCommits({ autoCheckpoint: false }, 1, 20);
    const onMain = (t: Traced, call: string): number => named(t, new RegExp(`^${t.pid}\\s+${call}\\(`));
    expect(lone.batches).toBe(20);
    expect(onMain(lone, 'fdatasync')).toBe(20);
    expect(onMain(lone, 'pwritev')).toBe(20);
    const many = await traceCommits({ autoCheckpoint: false }, 32, 8);
    expect(named(many, /fdatasync\(/)).toBe(many.batches);
    expect(onMain(many, 'fdatasync')).toBe(0);
  });

  it('with zeroAhead, a WAL past 8 MiB gets zeros written, written back and synced ahead by another thread than the commits\' (the background lane)', async () => {
    // 5,120 one-page commits, 20.6 MiB of frames: zeroings start at 8, ~12 and ~16 MiB, so at
    // least one has ended (with its fdatasync) before the traced window closes
    const t = await traceCommits({ autoCheckpoint: false, zeroAhead: true }, 64, 80);
    const tid = (l: string): number => Number(/^(\d+)/.exec(l)![1]);
    const onWal = (re: RegExp): string[] => t.lines.filter((l) => re.test(l));
    // a commit's pwritev starts with a 24-byte frame header; the zero-ahead's writes 64 KiB of zeros
    const commitThreads = new Set(onWal(/pwritev\(\d+<[^>]*-wal>, \[\{iov_base=.*iov_len=24\}/).map(tid));
    const zeroWrites = onWal(/pwritev\(\d+<[^>]*-wal>, \[\{iov_base="\\0\\0\\0.*iov_len=65536\}/);
    const writeBacks = onWal(/sync_file_range\(\d+<[^>]*-wal>/);
    const zeroThreads = new Set(writeBacks.map(tid));
    expect(commitThreads.size).toBeGreaterThan(0);
    expect(zeroWrites.length).toBeGreaterThan(0);
    expect(writeBacks.length).toBeGreaterThan(0);
    for (const z of zeroThreads) {
      expect(commitThreads.has(z)).toBe(false);
      expect(z).not.toBe(t.pid);
    }
    // and each zeroing ends with an fdatasync of the WAL on its thread (the size and blocks durable)
    expect(onWal(/fdatasync\(\d+<[^>]*-wal>/).filter((l) => zeroThreads.has(tid(l))).length).toBeGreaterThan(0);
    // through a descriptor of its own: a write-back error it meets still fails the commits' next fdatasync
    const fd = (l: string): number => Number(/\((\d+)</.exec(l)![1]);
    const commitFds = new Set(onWal(/pwritev\(\d+<[^>]*-wal>, \[\{iov_base=.*iov_len=24\}/).map(fd));
    for (const l of [...zeroWrites, ...writeBacks]) expect(commitFds.has(fd(l))).toBe(false);
  });

  it('a WAL restart writes the new header and fdatasyncs it (on the same thread, nothing else written to the WAL between) before the first frame of the new generation is written: never one sync for both (bench/probes/restart-fold-hazard.py)', async () => {
    // 480 one-page commits with auto-checkpoints every 64 frames: the WAL restarts again and again
    const t = await traceCommits({ autoCheckpoint: 64 }, 8, 60, 'write,pwrite64,pwritev,fdatasync,fsync');
    const tid = (l: string): number => Number(/^(\d+)/.exec(l)![1]);
    // the new header: 32 bytes at offset 0 of the WAL, starting with the magic 0x377f0682/3
    const isHeaderWrite = (l: string): boolean => /pwrite(?:v|64)\(\d+<[^>]*-wal>, (?:\[\{)?(?:iov_base=)?"7\\177\\6\\20[23]/.test(l) && /(?:iov_len=32\}\], 1, 0|", 32, 0)/.test(l);
    const isWalWrite = (l: string): boolean => /pwrite(?:v|64)\(\d+<[^>]*-wal>/.test(l);
    // a frame: a write whose first 24 bytes are a frame header (a commit's pwritev)
    const isFrameWrite = (l: string): boolean => /pwritev\(\d+<[^>]*-wal>, \[\{iov_base=.*?iov_len=24\}/.test(l);
    let restarts = 0;
    for (let h = 0; h < t.lines.length; h++) {
      const line = t.lines[h]!;
      if (!isHeaderWrite(line)) continue;
      restarts++;
      const thread = tid(line);
      // the header's write completes (= 32), then that thread's fdatasync of the WAL completes (= 0)
      let synced = -1;
      let started = false;
      for (let i = h; i < t.lines.length && synced < 0; i++) {
        const l = t.lines[i]!;
        if (i > h && isWalWrite(l)) expect.fail(`the WAL was written (${l.slice(0, 120)}) before the restart's header (${line.slice(0, 120)}) was synced`);
        if (tid(l) !== thread) continue;
        if (/fdatasync\(\d+<[^>]*-wal>/.test(l)) started = true;
        if (started && /(?:fdatasync\(\d+<[^>]*-wal>\)|<\.\.\. fdatasync resumed>\)) += 0$/.test(l)) synced = i;
      }
      expect(synced, `no fdatasync of the WAL after the header write ${line}`).toBeGreaterThan(h);
      const frame = t.lines.findIndex((l, i) => i > h && isFrameWrite(l));
      expect(frame, 'the new generation\'s first frame').toBeGreaterThan(synced);
    }
    expect(restarts).toBeGreaterThanOrEqual(3);
  });

  it('the batch that restarts the WAL over this connection\'s own generation reads nothing of the WAL first (no header read at 0, no lseek for its size): it knows the header it wrote', async () => {
    const t = await traceCommits({ autoCheckpoint: 64 }, 8, 60, 'write,pread64,pwritev,lseek,%stat');
    const isHeaderWrite = (l: string): boolean => /pwritev\(\d+<[^>]*-wal>, \[\{iov_base="7\\177\\6\\20[23].*iov_len=32\}\], 1, 0/.test(l);
    const isFrameWrite = (l: string): boolean => /pwritev\(\d+<[^>]*-wal>, \[\{iov_base=.*?iov_len=24\}/.test(l);
    // what adoptIndex and an append's window check read: the WAL's header, and its size
    const isWindowRead = (l: string): boolean => /pread64\(\d+<[^>]*-wal>, .*, 32, 0\)/.test(l) || /lseek\(\d+<[^>]*-wal>/.test(l) || /^\d+\s+(?:<\.\.\. )?\w*stat\w*[( ]/.test(l);
    let restarts = 0;
    let lastFrame = -1;
    for (let i = 0; i < t.lines.length; i++) {
      const l = t.lines[i]!;
      if (isFrameWrite(l)) lastFrame = i;
      if (!isHeaderWrite(l) || lastFrame < 0) continue;
      restarts++;
      const reads = t.lines.slice(lastFrame + 1, i).filter(isWindowRead);
      expect(reads, 'between the last batch of the ending generation and the new header').toEqual([]);
    }
    expect(restarts).toBeGreaterThanOrEqual(3);
    expect(t.batches).toBeGreaterThan(restarts);
  });
});
