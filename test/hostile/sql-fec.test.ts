// walnut/sql with the FEC sidecar: openDatabase() takes walnut's open() options, `fec` among
// them, but opened its store without the sidecar's extension, so `fec: { repairSymbols: 2 }` was
// accepted and silently did nothing: no -wal-fec was written, store.metrics().fec was undefined,
// and a damaged frame at the next open dropped every later commit (SQLite's own recovery), the
// loss the option was asked for to prevent. Here walnut/sql writes with fec on, a frame of an
// early commit is damaged on disk, and the next openDatabase() repairs it: every row is back,
// where SQLite's recovery of a copy keeps only the commits before the damage.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PS = 4096;
const FRAME = 24 + PS;
const ROWS = 30;

function sqlite(file: string, sql: string): string {
  return execFileSync('sqlite3', [file, sql], { encoding: 'utf8' }).trim();
}

describe('walnut/sql with fec', () => {
  it('keeps the -wal-fec sidecar, and the next open repairs a damaged frame: every committed row survives', async () => {
    const file = path.join(dir, 'app.db');
    const options = { fec: { repairSymbols: 2 }, autoCheckpoint: false as const, keepWal: true, pageSize: PS, readConnections: 0 };
    const db = await openDatabase(file, options);
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
      for (let i = 0; i < ROWS; i++) await db.run('INSERT INTO t(v) VALUES (randomblob(3000))');
      const fec = db.store.metrics().fec;
      expect(fec).toBeDefined();
      expect(fec!.repairSymbols).toBe(2);
    } finally {
      await db.close();
    }
    expect(fs.existsSync(`${file}-wal-fec`)).toBe(true);
    const frames = (fs.statSync(`${file}-wal`).size - 32) / FRAME;
    expect(frames).toBeGreaterThan(ROWS);

    // one byte of frame 3's page (the second commit's) flipped on disk; the -shm gone, so the next open recovers
    const fd = fs.openSync(`${file}-wal`, 'r+');
    const at = 32 + 2 * FRAME + 24 + 1000;
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0]! ^= 0x10;
    fs.writeSync(fd, b, 0, 1, at);
    fs.closeSync(fd);
    fs.rmSync(`${file}-shm`);

    // what SQLite's own recovery keeps of a copy: the commits before the damaged frame
    const copy = path.join(dir, 'copy.db');
    fs.copyFileSync(file, copy);
    fs.copyFileSync(`${file}-wal`, `${copy}-wal`);
    const lost = sqlite(copy, "SELECT CASE WHEN EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 't') THEN (SELECT count(*) FROM t) ELSE -1 END");
    expect(Number(lost)).toBeLessThan(ROWS);

    const again = await openDatabase(file, options);
    try {
      expect(again.store.metrics().fec!.recovery.repairedFrames).toBe(1);
      expect(await again.get('SELECT count(*) AS n FROM t')).toEqual({ n: ROWS });
    } finally {
      await again.close();
    }
    expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
    expect(sqlite(file, 'SELECT count(*) FROM t')).toBe(String(ROWS));
  });
});
