// Hostile: `walnut export app.db -o app.ark --force` over an existing backup. --force truncated
// the old FILE when the export started: an export that then failed (a full disk) left a cut
// stream there that does not restore, and the old backup was gone. A one-shot export now writes
// a new file beside FILE and renames it over FILE only once the stream is whole and synced; a
// failure leaves the old FILE as it was and no new file behind. The replaced FILE keeps its
// permission bits. (--follow --force: cli-export-follow-force-keeps-old.)
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, restore } from '../../lib/index';
import { spawnOutput } from '../helpers/children';
import { immutableSkip, MOUNT_SKIP, smallTmpfs } from '../helpers/small-fs';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);

async function database(name: string, pages: number): Promise<string> {
  const db = path.join(dir, name);
  const store = await open(db, { pageSize: 4096 });
  for (let p = 2; p <= pages; p += 64) {
    const batch = [];
    for (let q = p; q < Math.min(p + 64, pages + 1); q++) batch.push({ pgno: q, data: Buffer.alloc(4096, q % 251) });
    await store.commit(batch, { dbSize: Math.min(p + 63, pages) });
  }
  await store.close();
  return db;
}

describe('walnut export -o FILE --force over an existing backup', () => {
  it('replaces FILE with the whole new stream, keeping its mode', async () => {
    const db = await database('a.db', 40);
    const ark = path.join(dir, 'a.ark');
    fs.writeFileSync(ark, 'old backup');
    fs.chmodSync(ark, 0o600);
    const r = await walnut('export', db, '-o', ark, '--force');
    expect(r.stderr).toMatch(/^walnut export: \d+ bytes\n$/);
    expect(r.status).toBe(0);
    expect(fs.statSync(ark).mode & 0o777).toBe(0o600);
    const back = path.join(dir, 'a-restored.db');
    await restore(fs.createReadStream(ark), back);
    expect(fs.readFileSync(back).equals(fs.readFileSync(db))).toBe(true);
    expect(fs.readdirSync(dir).filter((f) => f.includes('a.ark') && f !== 'a.ark')).toEqual([]);
  });

  it.skipIf(MOUNT_SKIP !== null)(`keeps the old FILE when the new stream does not fit (a full disk)${MOUNT_SKIP === null ? '' : ` (${MOUNT_SKIP})`}`, async () => {
    const small = await database('small.db', 20);
    const big = await database('big.db', 1000); // ~4 MiB of pages
    const disk = smallTmpfs('2m');
    const ark = path.join(disk, 'app.ark');
    expect((await walnut('export', small, '-o', ark)).status).toBe(0);
    const old = fs.readFileSync(ark);
    const r = await walnut('export', big, '-o', ark, '--force');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^walnut: WALNUT_FULL/);
    expect(fs.readFileSync(ark).equals(old)).toBe(true); // the old backup, whole
    expect(fs.readdirSync(disk)).toEqual(['app.ark']); // and nothing else left on the disk
    const back = path.join(dir, 'small-restored.db');
    await restore(fs.createReadStream(ark), back);
    expect(fs.readFileSync(back).equals(fs.readFileSync(small))).toBe(true);
  });

  const IMMUTABLE_SKIP = immutableSkip(dir);
  it.skipIf(IMMUTABLE_SKIP !== null)(`in a directory that takes no new name (chattr +i), FILE is written in place as before${IMMUTABLE_SKIP === null ? '' : ` (${IMMUTABLE_SKIP})`}`, async () => {
    const db = await database('c.db', 30);
    const locked = path.join(dir, 'locked');
    fs.mkdirSync(locked);
    const ark = path.join(locked, 'c.ark');
    fs.writeFileSync(ark, 'old backup');
    execFileSync('chattr', ['+i', locked]);
    try {
      const r = await walnut('export', db, '-o', ark, '--force');
      expect(r.stderr).toMatch(/^walnut export: \d+ bytes\n$/);
      expect(r.status).toBe(0);
    } finally {
      execFileSync('chattr', ['-i', locked]);
    }
    const back = path.join(dir, 'c-restored.db');
    await restore(fs.createReadStream(ark), back);
    expect(fs.readFileSync(back).equals(fs.readFileSync(db))).toBe(true);
    expect(fs.readdirSync(locked)).toEqual(['c.ark']);
  });
});
