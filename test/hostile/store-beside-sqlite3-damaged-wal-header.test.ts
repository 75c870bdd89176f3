// Hostile: a walnut store beside a running sqlite3 whose WAL header on disk is damaged. sqlite3
// goes on from its -shm (it reads the WAL header only in recovery), but every commit of the
// store failed WALNUT_CORRUPT ("the wal-index describes frames of a WAL generation that is not
// on disk"), and reopening, with fec too, did not help: the -shm is valid, so no recovery runs
// to restore the header. Now the writer, holding WRITE, restores the header from what the live
// index knows (salts, page size, byte order) and frame 1 (WalFile #headerFromIndex): the
// store's commits land after sqlite3's, sqlite3 goes on, and the header on disk is the original
// again, byte for byte. Page sizes 4096, 512 and 65536.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { tmpDir } from '../helpers/tmp';

const dist = path.resolve(__dirname, '..', '..', 'dist', 'index.js');

/** Two rounds of: open a store (with fec), commit page 1 again unchanged, close. Prints one JSON line per round. */
const storeScript = `
import { open } from ${JSON.stringify(dist)};
const db = process.argv[1];
for (let round = 0; round < 2; round++) {
  const s = await open(db, { fec: { repairSymbols: 2 }, autoCheckpoint: false });
  try {
    const snap = await s.snapshot(); const p1 = await snap.read(1); snap.release();
    const r = await s.commit([{ pgno: 1, data: p1 }]);
    console.log(JSON.stringify({ ok: true, lastFrame: r.lastFrame }));
  } catch (e) { console.log(JSON.stringify({ ok: false, code: e.code, message: e.message })); }
  await s.close();
}
`;

function run(pageSize: number): { header: string; damaged: string; restored: string; store: { ok: boolean; code?: string; message?: string }[]; after: number; integrity: string; reopened: number } {
  const db = path.join(tmpDir('store-damaged-wal-header'), 'a.db');
  const py = `
import sqlite3, sys, subprocess, json
db = sys.argv[1]
c = sqlite3.connect(db, isolation_level=None)
c.execute('PRAGMA page_size=${pageSize}'); c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0')
c.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)')
for i in range(50): c.execute("INSERT INTO t(v) VALUES (?)", ('x' * 300,))
with open(db + '-wal', 'r+b') as f:
    header = f.read(32)
    f.seek(16); f.write(bytes([header[16] ^ 1]))
    f.seek(0); damaged = f.read(32)
r = subprocess.run(sys.argv[2:], capture_output=True, text=True)
with open(db + '-wal', 'rb') as f: restored = f.read(32)
c.execute("INSERT INTO t(v) VALUES ('after')")
after = c.execute('SELECT count(*) FROM t').fetchone()[0]
integrity = c.execute('PRAGMA integrity_check').fetchone()[0]
c.close()
reopened = sqlite3.connect(db).execute('SELECT count(*) FROM t').fetchone()[0]
print(json.dumps({'header': header.hex(), 'damaged': damaged.hex(), 'restored': restored.hex(), 'store': [json.loads(l) for l in r.stdout.splitlines()], 'stderr': r.stderr, 'after': after, 'integrity': integrity, 'reopened': reopened}))
`;
  const out = spawnSync('python3', ['-c', py, db, process.execPath, '--input-type=module', '-e', storeScript, db], { encoding: 'utf8' });
  expect(out.stderr).toBe('');
  const r = JSON.parse(out.stdout);
  expect(r.stderr).toBe('');
  return r;
}

describe('a store beside a running sqlite3 whose WAL header is damaged', () => {
  for (const pageSize of [4096, 512, 65536]) {
    it(`page size ${pageSize}: the store's commits succeed (both opens), the header is restored exactly, sqlite3 keeps every commit`, () => {
      const r = run(pageSize);
      expect(r.damaged).not.toBe(r.header);
      expect(r.store).toEqual([expect.objectContaining({ ok: true }), expect.objectContaining({ ok: true })]);
      expect(r.restored).toBe(r.header);
      expect(r).toMatchObject({ after: 51, integrity: 'ok', reopened: 51 });
    }, 60_000);
  }
});
