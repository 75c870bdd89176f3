// Hostile: sidecar groups over frames that SQLite's recovery dropped and another writer then
// replaced. A damaged frame, then sqlite3 opening first: its recovery ends the log before the
// damage, and its next commits are written over those frames, under the same salts. The old
// frames after them stay on disk, and so do their sidecar groups. At walnut's next recovery the
// chain broke at the first old frame; its group matched it (the old frame is intact) and the
// "repair" re-chained every old frame onto sqlite3's new ones: sqlite3's two acknowledged rows
// were gone and walnut's old commits were back on top of them (with more pages touched, a mix of
// two histories). A group now carries the WAL checksum written just before its first frame, and
// is used only where the WAL still has that one there.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, WalnutFile } from '../../lib/index';
import { scanSidecar } from '../../lib/fec/sidecar';
import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const PS = 4096;
const FRAME = 24 + PS;

function python(file: string, code: string): string {
  return execFileSync('python3', ['-c', `import sqlite3, sys, os\nc = sqlite3.connect(sys.argv[1], isolation_level=None)\n${code}`, file], { encoding: 'utf8' }).trim();
}

function groupsOf(file: string): { firstFrame: number; k: number }[] {
  const f = WalnutFile.openSync(`${file}-wal-fec`, { readOnly: true });
  try {
    return scanSidecar(f).groups;
  } finally {
    f.closeSync();
  }
}

describe('a sidecar group over frames another writer replaced after a recovery', () => {
  it('is not used to bring the old frames back over the new ones: sqlite3\'s rows stay', async () => {
    const file = path.join(tmpDir(), 'app.db');
    python(file, `c.execute('PRAGMA page_size=${PS}'); c.execute('PRAGMA journal_mode=WAL'); c.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)'); c.close()`);
    const db = await openDatabase(file, { fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true, readConnections: 0 });
    for (let i = 1; i <= 12; i++) await db.run('INSERT INTO t(v) VALUES (?)', [`walnut ${i}`]);
    await db.close();

    // the third group's first frame is damaged; sqlite3's two one-frame commits will replace it and the next
    const g = groupsOf(file)[2]!;
    expect(g.k).toBe(2); // (walnut/sql writes two frames per insert here; sqlite3 one)
    const fd = fs.openSync(`${file}-wal`, 'r+');
    const at = 32 + (g.firstFrame - 1) * FRAME + 24 + 2000;
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0]! ^= 0x10;
    fs.writeSync(fd, b, 0, 1, at);
    fs.closeSync(fd);
    fs.rmSync(`${file}-shm`, { force: true });

    // sqlite3 opens first (its recovery drops the damaged frame and all after), commits twice, and dies: the WAL stays
    const seen = python(file, `c.execute('PRAGMA wal_autocheckpoint=0')\nn = c.execute('SELECT count(*) FROM t').fetchone()[0]\nc.execute("INSERT INTO t(v) VALUES ('sqlite 1')")\nc.execute("INSERT INTO t(v) VALUES ('sqlite 2')")\nprint(n, flush=True)\nos._exit(0)`);
    const before = Number(seen);
    expect(before).toBeLessThan(12);

    const store = await open(file, { fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true });
    const recovery = (store.metrics().fec as { recovery: { repairedFrames: number; fallbacks: Record<string, number> } }).recovery;
    await store.close();
    expect(recovery.repairedFrames).toBe(0); // 18 frames "repaired" before
    expect(recovery.fallbacks).toEqual({ 'group-mismatch': 1 });

    expect(python(file, `print(c.execute('PRAGMA integrity_check').fetchone()[0])`)).toBe('ok');
    const rows = python(file, `print('|'.join(v for (v,) in c.execute('SELECT v FROM t ORDER BY id')))`).split('|');
    expect(rows).toEqual([...Array.from({ length: before }, (_, i) => `walnut ${i + 1}`), 'sqlite 1', 'sqlite 2']);
  });
});
