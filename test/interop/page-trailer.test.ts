// The opt-in XXH3-128 page trailer (pageChecksums: true): walnut creates a database that reserves
// 16 bytes per page, SQLite builds tables in it (honouring the reserved space), walnut commits
// pages and stamps them, SQLite still reads the result with integrity_check ok, the trailer bytes
// equal @node-rs/xxhash's XXH3-128 (low u64 then high u64, little-endian), and a damaged page is
// WALNUT_CORRUPT with its pgno on read and a level-1 finding in verify.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { xxh3 as refXxh3 } from '@node-rs/xxhash';
import { afterAll, describe, expect, it } from 'vitest';

import { open, verify, verifySnapshot } from '../../lib/index';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { sqliteIntegrity } from '../helpers/sqlite-db';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('trailer');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function expectedTrailer(page: Uint8Array): Buffer {
  const h = refXxh3.xxh128(Buffer.from(page.subarray(0, page.length - 16)));
  const out = Buffer.alloc(16);
  out.writeBigUInt64LE(h & 0xffffffffffffffffn, 0);
  out.writeBigUInt64LE(h >> 64n, 8);
  return out;
}

describe('page checksum trailer', () => {
  it.each([1024, 4096, 65536])('page size %i: walnut stamps, SQLite reads and writes around it, damage is caught', async (pageSize) => {
    const file = path.join(dir, `t${pageSize}.db`);
    let store = await open(file, { pageSize, pageChecksums: true });
    await store.close();
    const created = fs.readFileSync(file);
    expect(created[20]).toBe(16);
    expect(created.subarray(pageSize - 16, pageSize)).toEqual(expectedTrailer(created.subarray(0, pageSize)));

    // SQLite fills the database: the pages it creates carry zero trailers ("unstamped", accepted);
    // the ones it rewrites (page 1 at least) keep walnut's old trailer, which no longer matches
    const db = new Database(file);
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); CREATE INDEX t_v ON t(v)');
    const ins = db.prepare('INSERT INTO t(v) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < 200; i++) ins.run(Buffer.alloc(i % 20 === 0 ? pageSize * 2 : 40, i));
    })();
    db.close();
    expect(fs.readFileSync(file)[20]).toBe(16);

    // so walnut reads them as corrupt until it re-stamps them: readRaw() and a commit of every page
    store = await open(file); // follows the header: trailers on
    const snap = await store.snapshot();
    const e1 = await expectRejectsWalnut(snap.read(1), 'WALNUT_CORRUPT');
    expect(e1.pgno).toBe(1);
    expect((await verify(file, 1)).issues.map((i) => i.pgno)).toContain(1);
    const pages: { pgno: number; data: Buffer }[] = [];
    for (let p = 1; p <= snap.dbSize; p++) pages.push({ pgno: p, data: await snap.readRaw(p) });
    snap.release();
    await store.commit(pages);
    const check = await store.snapshot();
    expect(verifySnapshot(check, 5).issues).toEqual([]);
    check.release();
    await store.close();

    const bytes = fs.readFileSync(file);
    const n = bytes.length / pageSize;
    expect(n).toBe(pages.length);
    for (let p = 1; p <= n; p++) {
      const page = bytes.subarray((p - 1) * pageSize, p * pageSize);
      expect(page.subarray(pageSize - 16)).toEqual(expectedTrailer(page));
    }
    expect(sqliteIntegrity(file)).toEqual(['ok']);
    expect((await verify(file, 5)).issues).toEqual([]);

    // one flipped bit in page 3's body
    const bad = Buffer.from(bytes);
    bad[2 * pageSize + 200] ^= 0x10;
    fs.writeFileSync(file, bad);
    const r = await verify(file, 1);
    expect(r.issues).toEqual([expect.objectContaining({ level: 1, kind: 'page-checksum', pgno: 3 })]);
    store = await open(file, { keepWal: true });
    const s2 = await store.snapshot();
    const err = await expectRejectsWalnut(s2.read(3), 'WALNUT_CORRUPT');
    expect(err.pgno).toBe(3);
    expect(() => s2.readSync(3)).toThrow(expect.objectContaining({ code: 'WALNUT_CORRUPT', pgno: 3 }));
    expect((await s2.read(2)).length).toBe(pageSize); // other pages read fine
    s2.release();
    await store.close();
  });

  it('pageChecksums: true on a database without reserved space is refused; false turns the checks off', async () => {
    const file = path.join(dir, 'plain.db');
    const s = await open(file);
    await s.close();
    await expectRejectsWalnut(open(file, { pageChecksums: true }), 'WALNUT_INVALID_ARGUMENT');
    await expectRejectsWalnut(open(file, { pageChecksums: 'yes' as unknown as boolean }), 'WALNUT_INVALID_ARGUMENT');

    const stamped = path.join(dir, 'stamped.db');
    await (await open(stamped, { pageChecksums: true })).close();
    const bytes = fs.readFileSync(stamped);
    bytes[50] ^= 1; // page 1's header area, outside SQLite's meaningful fields but inside the hash
    fs.writeFileSync(stamped, bytes);
    const off = await open(stamped, { pageChecksums: false, keepWal: true });
    const snap = await off.snapshot();
    expect((await snap.read(1))[50]).toBe(bytes[50]);
    snap.release();
    await off.close();
    const on = await open(stamped, { keepWal: true });
    const snap2 = await on.snapshot();
    await expectRejectsWalnut(snap2.read(1), 'WALNUT_CORRUPT');
    snap2.release();
    await on.close();
  });
});
