// --busy-timeout <ms> (verify, recover, checkpoint, export, replicate, replica): how long a
// command waits for a lock another connection holds, as sqlite3's .timeout. Every command waited
// the library's 5 s default with no way to say otherwise: a script beside a busy sqlite3 writer
// could neither wait longer nor fail sooner. Checked before anything is opened; a bad value is
// WALNUT_INVALID_ARGUMENT reason busyTimeout, exit 2, nothing changed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnOutput } from '../helpers/children';
import { Database, sqliteWritesWal, typicalWork } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);
let n = 0;
const sqliteDb = () => sqliteWritesWal(dir, `bt${n++}`, 4096, typicalWork(12, n)).db;

describe('walnut --busy-timeout', () => {
  it('a bad value is refused before anything is opened, by every verb that takes it', async () => {
    const db = sqliteDb();
    const files = () => fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(db))).sort();
    const before = files();
    const verbs: string[][] = [
      ['verify', db],
      ['recover', db],
      ['checkpoint', db],
      ['export', db, '-o', path.join(dir, 'never.ark')],
      ['replicate', db, '--nats', 'nats://127.0.0.1:1', '--stream', 's'],
      ['replica', '--nats', 'nats://127.0.0.1:1', '--stream', 's', path.join(dir, 'never-replica.db')],
    ];
    for (const verb of verbs) {
      for (const bad of ['-1', 'abc', '1.5', '0x10', '', '99999999999999999999']) {
        const r = await walnut(...verb, '--busy-timeout', bad, '--json');
        expect(r.status, `${verb[0]} ${bad}: ${r.stderr}`).toBe(2);
        expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'busyTimeout' });
      }
    }
    expect(files()).toEqual(before);
    expect(fs.existsSync(path.join(dir, 'never.ark'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'never-replica.db'))).toBe(false);
  });

  it('checkpoint --mode truncate beside a sqlite3 read transaction waits what it is given, then comes back busy', async () => {
    const db = sqliteDb();
    const reader = new Database(db);
    try {
      reader.prepare('BEGIN').run();
      reader.prepare('SELECT count(*) AS n FROM t').get(); // a read mark in the WAL, held
      const walBytes = fs.statSync(`${db}-wal`).size;
      const began = performance.now();
      const r = await walnut('checkpoint', db, '--mode', 'truncate', '--busy-timeout', '1500', '--json');
      const waited = performance.now() - began;
      expect(JSON.parse(r.stdout)).toMatchObject({ mode: 'truncate', busy: true });
      expect(r.status).toBe(1);
      expect(waited).toBeGreaterThanOrEqual(1500); // it waited for the reader (never less than asked)
      expect(fs.statSync(`${db}-wal`).size).toBe(walBytes);
      reader.prepare('COMMIT').run();
    } finally {
      reader.close();
    }
  });

  it('recover --repair takes no other busy timeout than its own', async () => {
    const db = sqliteDb();
    const r = await walnut('recover', db, '--repair', '--busy-timeout', '100');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/WALNUT_INVALID_ARGUMENT: --busy-timeout is not taken with --repair/);
  });
});
