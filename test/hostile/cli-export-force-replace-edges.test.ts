// Hostile: `walnut export app.db -o FILE --force` where replacing FILE by a new file beside it
// (cli-export-force-keeps-old) is not what the old in-place truncation was: a FILE whose name
// is too long for the new name's prefix and suffix (ENAMETOOLONG, where FILE itself was fine), a
// FILE the user may not write (0444, another user's 0600: the truncation was refused, the
// rename took it), a FILE another user owns in a sticky directory (/tmp: writable in place, the
// rename is EPERM after the whole export), a write-only FILE (0200: the new file could not be
// reopened to be synced), a FILE that is a mount point (bind-mounted: the rename is EBUSY after
// the whole export), and a SIGINT or SIGTERM mid-export (the new file was left behind).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, restore } from '../../lib/index';
import { asNobody, nobodySkip } from '../helpers/as-nobody';
import { spawnOutput } from '../helpers/children';
import { MOUNT_SKIP } from '../helpers/small-fs';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
fs.chmodSync(dir, 0o755); // the other user's runs below reach their directories through it
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);
const ROOT_SKIP = nobodySkip();

async function database(file: string, pages: number): Promise<string> {
  const store = await open(file, { pageSize: 4096 });
  for (let p = 2; p <= pages; p += 64) {
    const batch = [];
    for (let q = p; q < Math.min(p + 64, pages + 1); q++) batch.push({ pgno: q, data: Buffer.alloc(4096, q % 251) });
    await store.commit(batch, { dbSize: Math.min(p + 63, pages) });
  }
  await store.close();
  return file;
}

/**
 * Sends `signal` to `child` once `written()` says its output has bytes (polled every ms, up to
 * 20,000 times); `ended`: how it exited.
 */
async function signalOnceWritten(child: ChildProcess, signal: NodeJS.Signals, written: () => boolean): Promise<{ sent: boolean; ended: Promise<{ status: number | null; signal: NodeJS.Signals | null }> }> {
  const ended = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (status, sig) => resolve({ status, signal: sig })));
  for (let i = 0; i < 20000; i++) {
    if (written()) {
      child.kill(signal);
      return { sent: true, ended };
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return { sent: false, ended };
}

async function restores(ark: string, db: string): Promise<void> {
  const back = path.join(path.dirname(ark), 'restored.db');
  // its descriptor closed before this returns: restore() resolves before the stream's close
  // (asynchronous), and an umount of the bind-mounted ark right after failed "target is busy"
  const input = fs.createReadStream(ark);
  const closed = new Promise<void>((resolve) => input.once('close', () => resolve()));
  try {
    await restore(input, back);
  } finally {
    input.destroy();
    await closed;
  }
  expect(fs.readFileSync(back).equals(fs.readFileSync(db))).toBe(true);
  fs.rmSync(back);
}

/** A directory the user nobody may write (mode 0777, or 01777: sticky, as /tmp). */
function openDirectory(name: string, mode: number): string {
  const d = path.join(dir, name);
  fs.mkdirSync(d);
  fs.chmodSync(d, mode);
  return d;
}

describe('walnut export -o FILE --force: where replacing FILE differs from writing it', () => {
  it('replaces a FILE whose name leaves no room for a longer name beside it', async () => {
    const db = await database(path.join(dir, 'long.db'), 30);
    const ark = path.join(dir, `${'b'.repeat(240)}.ark`); // 244 bytes of a 255-byte NAME_MAX
    fs.writeFileSync(ark, 'old backup');
    const r = await walnut('export', db, '-o', ark, '--force');
    expect(r.stderr).toMatch(/^walnut export: \d+ bytes\n$/);
    expect(r.status).toBe(0);
    await restores(ark, db);
    expect(fs.readdirSync(dir).filter((f) => f.includes('walnut-export'))).toEqual([]);
  });

  it.skipIf(ROOT_SKIP !== null)(`refuses, as before, a FILE the user may not write (0444, another user's 0600)${ROOT_SKIP === null ? '' : ` (${ROOT_SKIP})`}`, async () => {
    const d = openDirectory('nowrite', 0o777);
    const db = await database(path.join(d, 'a.db'), 20);
    fs.chmodSync(db, 0o666);
    for (const [name, owner, mode] of [['mine.ark', 65534, 0o444], ['theirs.ark', 0, 0o600]] as const) {
      const ark = path.join(d, name);
      fs.writeFileSync(ark, 'old backup');
      fs.chownSync(ark, owner, owner === 0 ? 0 : 65534);
      fs.chmodSync(ark, mode);
      const r = await asNobody('export', db, '-o', ark, '--force');
      expect(r.stderr).toMatch(/^walnut: WALNUT_CANTOPEN: .*EACCES/);
      expect(r.status).toBe(2);
      expect(fs.readFileSync(ark, 'utf8')).toBe('old backup');
      const st = fs.statSync(ark);
      expect([st.uid, st.mode & 0o777]).toEqual([owner, mode]);
    }
    expect(fs.readdirSync(d).filter((f) => f.includes('walnut-export'))).toEqual([]);
  });

  it.skipIf(ROOT_SKIP !== null)(`writes in place, as before, another user's writable FILE in a sticky directory (/tmp)${ROOT_SKIP === null ? '' : ` (${ROOT_SKIP})`}`, async () => {
    const d = openDirectory('sticky', 0o1777);
    const db = await database(path.join(d, 's.db'), 20);
    fs.chmodSync(db, 0o666);
    const ark = path.join(d, 'shared.ark');
    fs.writeFileSync(ark, 'old backup');
    fs.chmodSync(ark, 0o666); // root's, writable by all
    const r = await asNobody('export', db, '-o', ark, '--force');
    expect(r.stderr).toMatch(/^walnut export: \d+ bytes\n$/);
    expect(r.status).toBe(0);
    expect(fs.statSync(ark).uid).toBe(0);
    await restores(ark, db);
    expect(fs.readdirSync(d).filter((f) => f.includes('walnut-export'))).toEqual([]);
  });

  it.skipIf(ROOT_SKIP !== null)(`replaces a write-only FILE (0200)${ROOT_SKIP === null ? '' : ` (${ROOT_SKIP})`}`, async () => {
    const d = openDirectory('writeonly', 0o777);
    const db = await database(path.join(d, 'w.db'), 20);
    fs.chmodSync(db, 0o666);
    const ark = path.join(d, 'w.ark');
    fs.writeFileSync(ark, 'old backup');
    fs.chownSync(ark, 65534, 65534);
    fs.chmodSync(ark, 0o200);
    const r = await asNobody('export', db, '-o', ark, '--force');
    expect(r.stderr).toMatch(/^walnut export: \d+ bytes\n$/);
    expect(r.status).toBe(0);
    expect(fs.statSync(ark).mode & 0o777).toBe(0o200);
    await restores(ark, db);
    expect(fs.readdirSync(d).filter((f) => f.includes('walnut-export'))).toEqual([]);
  });

  it.skipIf(MOUNT_SKIP !== null)(`writes in place, as before, a FILE that is a mount point (a bind-mounted file: no rename replaces it)${MOUNT_SKIP === null ? '' : ` (${MOUNT_SKIP})`}`, async () => {
    const d = path.join(dir, 'bind');
    fs.mkdirSync(d);
    const db = await database(path.join(d, 'm.db'), 20);
    const real = path.join(d, 'real.ark');
    const ark = path.join(d, 'bound.ark');
    fs.writeFileSync(real, 'old backup');
    fs.writeFileSync(ark, '');
    execFileSync('mount', ['--bind', real, ark]);
    try {
      const r = await walnut('export', db, '-o', ark, '--force');
      expect(r.stderr).toMatch(/^walnut export: \d+ bytes\n$/);
      expect(r.status).toBe(0);
      await restores(ark, db);
    } finally {
      execFileSync('umount', [ark]);
    }
    await restores(real, db); // what the mount showed
    expect(fs.readdirSync(d).filter((f) => f.includes('walnut-export'))).toEqual([]);
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} mid-export keeps the old FILE and leaves no new file behind`, async () => {
      const d = path.join(dir, signal);
      fs.mkdirSync(d);
      const db = await database(path.join(d, 'big.db'), 6000); // ~24 MiB: an export that takes a while
      const ark = path.join(d, 'big.ark');
      fs.writeFileSync(ark, 'old backup');
      const child = spawn(process.execPath, [bin, 'export', db, '-o', ark, '--force'], { stdio: 'ignore' });
      const { sent, ended } = await signalOnceWritten(child, signal, () => {
        const partial = fs.readdirSync(d).find((f) => f.includes('walnut-export'));
        return partial !== undefined && (fs.statSync(path.join(d, partial), { throwIfNoEntry: false })?.size ?? 0) > 0;
      });
      expect(sent).toBe(true);
      const r = await ended;
      if (r.status === 0) return; // (finished before the signal landed: nothing to check)
      expect(r.signal === signal || r.status !== 0).toBe(true);
      expect(fs.readFileSync(ark, 'utf8')).toBe('old backup');
      expect(fs.readdirSync(d).filter((f) => f.includes('walnut-export'))).toEqual([]); // (the reader's -wal and -shm may stay, as SQLite's)
    }, 30_000);
  }

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} mid-export to a new FILE (no --force) removes the FILE it created (a cut stream never looks like a backup)`, async () => {
      const d = path.join(dir, `new-${signal}`);
      fs.mkdirSync(d);
      const db = await database(path.join(d, 'big.db'), 6000);
      const ark = path.join(d, 'big.ark');
      const child = spawn(process.execPath, [bin, 'export', db, '-o', ark], { stdio: 'ignore' });
      const { sent, ended } = await signalOnceWritten(child, signal, () => (fs.statSync(ark, { throwIfNoEntry: false })?.size ?? 0) > 0);
      expect(sent).toBe(true);
      const r = await ended;
      if (r.status === 0) return; // (finished before the signal landed: nothing to check)
      expect(r.signal === signal || r.status !== 0).toBe(true);
      expect(fs.existsSync(ark)).toBe(false);
    }, 30_000);
  }
});
