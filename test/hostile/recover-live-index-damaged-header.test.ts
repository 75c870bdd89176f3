// Hostile: `walnut recover` (and `recover --repair` where no sidecar copy fits) beside a running
// sqlite3 whose WAL header on disk is damaged. SQLite's live connections go on from the -shm
// (they never read the WAL header again) and would checkpoint every commit from it at their
// last close; walnut's rebuild read the WAL as empty and rewrote the -shm so: python3's 50
// acknowledged commits (its table too) were gone at once, and its close removed the WAL.
// Now the rebuild restores the header from what the live index knows (salts, page size, byte
// order) and frame 1 (wal-index.ts #restoreWalHeaderFromLiveIndex), or, when that cannot be
// derived (frame 1 damaged too), refuses with WALNUT_CORRUPT WalHeaderDamaged and leaves the
// index as it was. Cases: no sidecar, and a sidecar of an older generation (sqlite3 restarted
// the WAL after walnut's fec groups were written: header-mismatch), big-endian checksums too.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { tmpDir } from '../helpers/tmp';

const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');

/**
 * A python3 sqlite3 connection commits, the WAL header byte at `damageAt` is flipped (and with
 * `damageFrame1` a byte of frame 1's page too), `walnut recover` runs while the connection is
 * still open, then that connection reads, commits once more and closes (the last connection:
 * it checkpoints and removes the WAL), and a new one counts the rows.
 */
function liveRecover(db: string, args: string[], opts: { restartFirst?: boolean; damageFrame1?: boolean } = {}): { before: number; recover: { status: number; stdout: string; stderr: string }; after: string; reopened: number } {
  const script = `
import sqlite3, sys, subprocess, json
db = sys.argv[1]
c = sqlite3.connect(db, isolation_level=None)
c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0')
c.execute('CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)')
if ${opts.restartFirst ? 'True' : 'False'}:
    c.execute('PRAGMA wal_checkpoint(RESTART)')
for i in range(50): c.execute("INSERT INTO t(v) VALUES (?)", ('x' * 300,))
before = c.execute('SELECT count(*) FROM t').fetchone()[0]
ps = c.execute('PRAGMA page_size').fetchone()[0]
with open(db + '-wal', 'r+b') as f:
    for at in ([16] + ([32 + 24 + 100] if ${opts.damageFrame1 ? 'True' : 'False'} else [])):
        f.seek(at); b = f.read(1); f.seek(at); f.write(bytes([b[0] ^ 1]))
r = subprocess.run(sys.argv[2:], capture_output=True, text=True)
try:
    after = str(c.execute('SELECT count(*) FROM t').fetchone()[0])
    c.execute("INSERT INTO t(v) VALUES ('after')")
except Exception as e:
    after = 'error: ' + str(e)
c.close()
c = sqlite3.connect(db)
try:
    reopened = c.execute('SELECT count(*) FROM t').fetchone()[0]
except Exception:
    reopened = -1
print(json.dumps({'before': before, 'recover': {'status': r.returncode, 'stdout': r.stdout, 'stderr': r.stderr}, 'after': after, 'reopened': reopened}))
`;
  const out = spawnSync('python3', ['-c', script, db, process.execPath, bin, 'recover', db, ...args], { encoding: 'utf8' });
  expect(out.stderr).toBe('');
  return JSON.parse(out.stdout);
}

describe('walnut recover beside a live sqlite3 whose WAL header is damaged', () => {
  it('no sidecar: the header is restored from the live index and frame 1; sqlite3 keeps all 50 commits (and its table)', () => {
    const db = path.join(tmpDir('recover-live-header'), 'a.db');
    const r = liveRecover(db, ['--json']);
    expect(r.recover.status).toBe(0);
    expect(JSON.parse(r.recover.stdout)).toMatchObject({ commits: 51 }); // CREATE TABLE + 50
    expect(r).toMatchObject({ before: 50, after: '50', reopened: 51 });
  }, 60_000);

  it('recover --repair with no sidecar: the same (the repair restores the header from frame 1 and says so), and no fallback is reported', () => {
    const db = path.join(tmpDir('recover-live-header'), 'a.db');
    const r = liveRecover(db, ['--repair', '--json']);
    expect(r.recover.status).toBe(0);
    expect(JSON.parse(r.recover.stdout)).toMatchObject({ commits: 51, fallback: null, restoredHeader: { was: 'bad-checksum', walFrames: 59 } });
    expect(r).toMatchObject({ before: 50, after: '50', reopened: 51 });
  }, 60_000);

  it('recover --repair, the sidecar holding an older generation (sqlite3 restarted the WAL after walnut wrote it): still every commit', async () => {
    const dir = tmpDir('recover-live-header');
    const db = path.join(dir, 'a.db');
    const { open } = await import('../../lib/index');
    const store = await open(db, { fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true });
    await store.commit([{ pgno: 1, data: (await (await store.snapshot()).read(1)) }]);
    await store.close();
    expect(fs.statSync(`${db}-wal-fec`).size).toBeGreaterThan(0);
    const r = liveRecover(db, ['--repair', '--json'], { restartFirst: true });
    expect(r.recover.status).toBe(0);
    expect(JSON.parse(r.recover.stdout)).toMatchObject({ fallback: null });
    expect(r).toMatchObject({ before: 50, after: '50', reopened: 51 });
  }, 60_000);

  it('frame 1 damaged too (no header can be derived): recover refuses with WALNUT_CORRUPT WalHeaderDamaged and leaves the index; sqlite3 keeps every commit', () => {
    const db = path.join(tmpDir('recover-live-header'), 'a.db');
    const r = liveRecover(db, ['--json'], { damageFrame1: true });
    expect(r.recover.status).not.toBe(0);
    expect(r.recover.stderr + r.recover.stdout).toMatch(/WALNUT_CORRUPT/);
    expect(r.recover.stderr + r.recover.stdout).toMatch(/WalHeaderDamaged|live wal-index/);
    expect(r).toMatchObject({ before: 50, after: '50', reopened: 51 });
  }, 60_000);
});
