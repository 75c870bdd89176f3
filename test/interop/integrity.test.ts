// Integrity levels 1..5 against SQLite's PRAGMA integrity_check, on databases SQLite builds:
// zero false alarms on healthy databases, and on 600 damaged copies (1,200 in npm run test:scale:
// the same seed, so the 600 are its first half) every case SQLite flags is flagged by walnut too
// (apart from the classes listed in UNCOVERED, which walnut does not check).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { afterAll, describe, expect, it, onTestFinished } from 'vitest';

import { open, verify } from '../../lib/index';
import { buildDatabase, pageRoles, type PageRole, sqliteIntegrity } from '../helpers/sqlite-db';
import { Database, sqliteWritesWal, typicalWork } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('integrity');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * What SQLite's integrity_check reports that walnut's levels do not check: the agreement of
 * index entries with table rows (walnut checks each b-tree on its own), column constraints
 * (NOT NULL, CHECK, STRICT types), and the content of records beyond their framing.
 */
const UNCOVERED = [/^row \d+ missing from index/, /^wrong # of entries in index/, /^non-unique entry in index/, /^NULL value in/, /^CHECK constraint failed/, /^(TEXT|NUMERIC|INTEGER|REAL|BLOB) value in/];

describe('verify on healthy databases SQLite built', () => {
  const cases: [number, 'none' | 'full' | 'incremental', string?][] = [];
  for (const ps of [512, 1024, 4096, 8192, 16384, 32768, 65536]) for (const av of ['none', 'full', 'incremental'] as const) cases.push([ps, av]);
  cases.push([4096, 'none', 'UTF-16le'], [1024, 'full', 'UTF-16be']);
  it.each(cases.map(([a, b, c]) => [a, b, c ?? 'UTF-8'] as const))('page size %i, auto_vacuum %s, %s: SQLite ok, walnut ok at every level', async (ps, av, enc) => {
    const file = buildDatabase(dir, `ok-${ps}-${av}-${enc ?? 'utf8'}`, { pageSize: ps, autoVacuum: av, encoding: enc as 'UTF-8', rows: ps >= 32768 ? 150 : 400 });
    expect(sqliteIntegrity(file)).toEqual(['ok']);
    for (let level = 1; level <= 5; level++) {
      const r = await verify(file, level);
      expect(r.issues).toEqual([]);
      expect(r.ok).toBe(true);
    }
  });

  it('reads pages from the WAL where newer (SQLite writes, the WAL holds most of the database)', async () => {
    const copy = sqliteWritesWal(dir, 'walres', 1024, typicalWork(40));
    expect(fs.statSync(copy.wal).size).toBeGreaterThan(20 * 1024);
    const r = await verify(copy.db, 5);
    expect(r.issues).toEqual([]);
    expect(r.pages).toBeGreaterThan(fs.statSync(copy.db).size / 1024);
    expect(sqliteIntegrity(copy.db)).toEqual(['ok']);
  });
});

type Damage = 'header-flip' | 'cell-pointer' | 'overflow-pointer' | 'freelist-entry' | 'zero-page' | 'shared-page' | 'ptrmap-entry' | 'cell-flip';
const DAMAGES: Damage[] = ['header-flip', 'cell-pointer', 'overflow-pointer', 'freelist-entry', 'zero-page', 'shared-page', 'ptrmap-entry', 'cell-flip'];

function rng(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return Math.floor((s / 2 ** 32) * n);
  };
}

/** Applies one damage of `kind` to a copy of the database bytes; null when the base has no such page. */
function damage(bytes: Buffer, pageSize: number, roles: PageRole[], kind: Damage, r: (n: number) => number): { bytes: Buffer; pgno: number } | null {
  const pick = (f: (p: PageRole) => boolean) => {
    const c = roles.filter(f);
    return c.length === 0 ? null : c[r(c.length)]!;
  };
  const out = Buffer.from(bytes);
  const n = bytes.length / pageSize;
  const base = (p: PageRole) => (p.pgno - 1) * pageSize + (p.pgno === 1 ? 100 : 0);
  const randomPgno = () => (r(4) === 0 ? r(2 ** 32) >>> 0 : 1 + r(n + 2));
  switch (kind) {
    case 'header-flip': {
      const p = pick((x) => x.kind !== undefined);
      if (!p) return null;
      const at = base(p) + r(p.kind === 'internal' ? 12 : 8);
      out[at] ^= 1 << r(8);
      return { bytes: out, pgno: p.pgno };
    }
    case 'cell-pointer': {
      const p = pick((x) => x.kind !== undefined && out.readUInt16BE(base(x) + 3) > 0);
      if (!p) return null;
      const hdr = p.kind === 'internal' ? 12 : 8;
      const ncell = out.readUInt16BE(base(p) + 3);
      const at = base(p) + hdr + r(2 * ncell);
      out[at] ^= 1 << r(8);
      return { bytes: out, pgno: p.pgno };
    }
    case 'overflow-pointer': {
      const p = pick((x) => x.role === 'overflow');
      if (!p) return null;
      out.writeUInt32BE(randomPgno(), (p.pgno - 1) * pageSize);
      return { bytes: out, pgno: p.pgno };
    }
    case 'freelist-entry': {
      const p = pick((x) => x.role === 'freelist-trunk');
      if (!p) return null;
      const at = (p.pgno - 1) * pageSize;
      const leaves = out.readUInt32BE(at + 4);
      const slot = r(leaves + 2); // 0: next trunk, 1: leaf count, 2..: a leaf
      if (slot === 1) out.writeUInt32BE(r(3) === 0 ? r(2 ** 32) >>> 0 : leaves + 1 + r(4), at + 4);
      else out.writeUInt32BE(randomPgno(), at + (slot === 0 ? 0 : 4 + 4 * slot));
      return { bytes: out, pgno: p.pgno };
    }
    case 'zero-page': {
      const pgno = 1 + r(n);
      out.fill(0, (pgno - 1) * pageSize, pgno * pageSize);
      return { bytes: out, pgno };
    }
    case 'shared-page': {
      const p = pick((x) => x.kind === 'internal');
      if (!p) return null;
      const other = pick((x) => x.kind !== undefined && x.tree !== p.tree && x.pgno !== 1);
      if (!other) return null;
      out.writeUInt32BE(other.pgno, base(p) + 8);
      return { bytes: out, pgno: p.pgno };
    }
    case 'ptrmap-entry': {
      const p = pick((x) => x.role === 'ptrmap');
      if (!p) return null;
      const used = Math.min(n - p.pgno, Math.floor((pageSize - bytes[20]!) / 5));
      if (used < 1) return null;
      const at = (p.pgno - 1) * pageSize + 5 * r(used) + r(5);
      out[at] ^= 1 << r(8);
      return { bytes: out, pgno: p.pgno };
    }
    case 'cell-flip': {
      const p = pick((x) => x.kind !== undefined && out.readUInt16BE(base(x) + 3) > 0);
      if (!p) return null;
      const hdr = p.kind === 'internal' ? 12 : 8;
      const cell = out.readUInt16BE(base(p) + hdr + 2 * r(out.readUInt16BE(base(p) + 3)));
      const at = (p.pgno - 1) * pageSize + cell + r(8);
      if (at >= p.pgno * pageSize) return null;
      out[at] ^= 1 << r(8);
      return { bytes: out, pgno: p.pgno };
    }
  }
}

describe('verify on a live database', () => {
  it('a SQLite writer committing (and restarting its WAL) throughout: no finding in 16 runs at levels 1 and 5', async () => {
    const file = path.join(dir, 'live.db');
    const setup = new Database(file);
    setup.pragma('journal_mode = WAL');
    setup.exec('CREATE TABLE t(x)');
    setup.close();
    // a writer in another process (SQLite's locks must not share a process with walnut's), as
    // fast as it can; a line every 20 commits; while verify holds it off it waits (or retries)
    const writer = spawn(process.execPath, ['-e', `const D = require('better-sqlite3'); const d = new D(process.argv[1]); d.pragma('wal_autocheckpoint = 40'); const s = d.prepare('INSERT INTO t VALUES (randomblob(1000))'); for (let n = 1; ; n++) { try { s.run(); } catch (e) { if (e.code !== 'SQLITE_BUSY') throw e; } if (n % 20 === 0) process.stdout.write('.'); }`, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    onTestFinished(() => void writer.kill('SIGKILL'));
    let progress: () => void = () => undefined;
    let died: (e: Error) => void = () => undefined;
    writer.stdout!.on('data', () => progress());
    // a writer that dies (its error is on stderr) fails the test at once: it waited for the
    // next line until the test's timeout (one 300 s hang seen, not reproduced in 10 runs)
    writer.once('exit', (code, signal) => died(new Error(`the SQLite writer exited (${code ?? signal}) before verify's 16 runs`)));
    const found: string[] = [];
    for (let i = 0; i < 16; i++) {
      await new Promise<void>((resolve, reject) => {
        progress = resolve;
        died = reject;
      }); // it is writing: verify starts among its commits
      const r = await verify(file, i % 2 === 0 ? 1 : 5);
      for (const issue of r.issues) found.push(`${issue.kind}: ${issue.message}`);
    }
    expect(found).toEqual([]);
  });
});

describe('damage differential against PRAGMA integrity_check', () => {
  // 600 in npm test (some 75 of each kind of damage, each base database 150 times; 1,200 were 20-35 s
  // of the suite), 1,200 in npm run test:scale
  const CASES = process.env.WALNUT_SCALE === '1' ? 1200 : 600;
  it(`${CASES.toLocaleString('en-US')} damaged copies: every case SQLite flags walnut flags, at the level that covers it`, async () => {
    const bases = [
      { name: 'd1024', pageSize: 1024, autoVacuum: 'none' as const },
      { name: 'd1024full', pageSize: 1024, autoVacuum: 'full' as const },
      { name: 'd512inc', pageSize: 512, autoVacuum: 'incremental' as const },
      { name: 'd4096', pageSize: 4096, autoVacuum: 'none' as const },
    ].map((b) => {
      const file = buildDatabase(dir, b.name, { pageSize: b.pageSize, autoVacuum: b.autoVacuum, rows: 300 });
      return { ...b, bytes: fs.readFileSync(file), roles: pageRoles(file).pages };
    });
    const r = rng(20261123);
    const stats = { cases: 0, sqliteFlagged: 0, walnutFlagged: 0, both: 0, uncovered: 0, walnutOnly: 0, byLevel: [0, 0, 0, 0, 0, 0] };
    const byKind: Record<string, { cases: number; sqlite: number; walnut: number }> = {};
    const uncoveredExamples: string[] = [];
    const copy = path.join(dir, 'damaged.db');
    while (stats.cases < CASES) {
      const b = bases[stats.cases % bases.length]!;
      const kind = DAMAGES[r(DAMAGES.length)]!;
      const d = damage(b.bytes, b.pageSize, b.roles, kind, r);
      if (d === null || d.bytes.equals(b.bytes)) continue;
      stats.cases++;
      // the loop's calls are synchronous at heart: let the event loop turn, or vitest's RPC with
      // this fork misses its 60 s deadline on a loaded machine ("Timeout calling onTaskUpdate")
      await new Promise((resolve) => setImmediate(resolve));
      const k = (byKind[kind] ??= { cases: 0, sqlite: 0, walnut: 0 });
      k.cases++;
      for (const s of ['', '-wal', '-shm']) fs.rmSync(copy + s, { force: true });
      fs.writeFileSync(copy, d.bytes);
      const report = await (async () => {
        try {
          return await verify(copy, 5);
        } catch (e) {
          // a header damaged beyond recognition: walnut refuses the file, a level-1 finding in effect
          expect((e as { code?: string }).code).toBe('WALNUT_CANTOPEN');
          return { ok: false, issues: [{ level: 1, kind: 'cantopen', message: String(e) }] };
        }
      })();
      fs.writeFileSync(copy, d.bytes); // verify changed nothing, but SQLite gets pristine bytes regardless
      const sqlite = sqliteIntegrity(copy);
      const sqliteFlags = !(sqlite.length === 1 && sqlite[0] === 'ok');
      if (sqliteFlags) {
        stats.sqliteFlagged++;
        k.sqlite++;
      }
      if (!report.ok) {
        stats.walnutFlagged++;
        k.walnut++;
        const level = Math.min(...report.issues.map((i) => i.level));
        stats.byLevel[level]!++;
        // the level gating is consistent: checking at exactly that level finds it too
        fs.writeFileSync(copy, d.bytes);
        try {
          expect((await verify(copy, level)).ok).toBe(false);
        } catch (e) {
          if ((e as { code?: string }).code !== 'WALNUT_CANTOPEN') throw e;
        }
      }
      if (sqliteFlags && report.ok) {
        const uncovered = sqlite.every((m) => UNCOVERED.some((re) => re.test(m)));
        if (!uncovered) throw new Error(`case ${stats.cases} (${b.name}, ${kind}, page ${d.pgno}): SQLite says ${JSON.stringify(sqlite.slice(0, 4))}, walnut says ok`);
        stats.uncovered++;
        if (uncoveredExamples.length < 5) uncoveredExamples.push(`${kind}: ${sqlite[0]}`);
      }
      if (sqliteFlags && !report.ok) stats.both++;
      if (!sqliteFlags && !report.ok) stats.walnutOnly++;
    }
    console.log('integrity differential', JSON.stringify(stats), JSON.stringify(byKind), uncoveredExamples);
    expect(stats.cases).toBe(CASES);
    // the damage is real: SQLite flags most cases and walnut catches every one outside UNCOVERED
    expect(stats.sqliteFlagged).toBeGreaterThan(CASES / 2);
    expect(stats.both + stats.uncovered).toBe(stats.sqliteFlagged);
  });
});

describe('schema damage (level 5) and bad input: findings, never a crash or a hang', () => {
  const fresh = (name: string) => {
    const file = buildDatabase(dir, name, { pageSize: 1024, rows: 120 });
    return { file, bytes: fs.readFileSync(file) };
  };
  const kinds = async (file: string, level = 5) => (await verify(file, level)).issues.map((i) => `${i.level}:${i.kind}`);

  it('a CREATE statement that is not one, a root page of the wrong kind, an unknown type', async () => {
    const { file, bytes } = fresh('schema');
    const page1 = bytes.subarray(0, 1024);
    const sqlAt = page1.indexOf('CREATE INDEX t_k');
    expect(sqlAt).toBeGreaterThan(0);
    const bad = Buffer.from(bytes);
    bad.write('CREATE INDEY', sqlAt);
    fs.writeFileSync(file, bad);
    expect(await kinds(file)).toContain('5:schema');
    expect(await kinds(file, 4)).toEqual([]);
    expect(sqliteIntegrity(file).join()).toMatch(/malformed/);

    const typeAt = page1.indexOf('viewtv');
    const bad2 = Buffer.from(bytes);
    bad2.write('vxew', typeAt);
    fs.writeFileSync(file, bad2);
    expect(await kinds(file)).toContain('5:schema');
  });

  it('keys out of order: two cell pointers swapped in a table leaf and in index leaves (BINARY, NOCASE DESC, RTRIM, NOCASE + DESC)', async () => {
    const { file, bytes } = fresh('order');
    const roles = pageRoles(file).pages;
    for (const tree of ['t', 't_k', 'c_x', 'od1', 'od2']) {
      const leaf = roles.find((p) => p.tree === tree && p.kind === 'leaf' && bytes.readUInt16BE((p.pgno - 1) * 1024 + 3) >= 2)!;
      const at = (leaf.pgno - 1) * 1024 + 8;
      const bad = Buffer.from(bytes);
      bad.writeUInt16BE(bytes.readUInt16BE(at + 2), at);
      bad.writeUInt16BE(bytes.readUInt16BE(at), at + 2);
      fs.writeFileSync(file, bad);
      const found = (await verify(file, 2)).issues;
      expect(found).toContainEqual(expect.objectContaining({ level: 2, kind: 'key-order', pgno: leaf.pgno }));
      expect(sqliteIntegrity(file)).not.toEqual(['ok']);
    }
  });

  it('a truncated file and a header page count past the end of the file', async () => {
    const { file, bytes } = fresh('trunc');
    fs.writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2048) * 1024));
    const r = await verify(file, 5);
    expect(r.ok).toBe(false);
    expect(r.issues.map((i) => i.kind)).toContain('page-count');
    expect(sqliteIntegrity(file)).not.toEqual(['ok']);

    const longer = Buffer.from(bytes);
    longer.writeUInt32BE(bytes.length / 1024 + 50, 28); // in-header size, still "valid" (version-valid-for = change counter)
    fs.writeFileSync(file, longer);
    expect(await kinds(file)).toContain('1:page-count');
  });

  it('a schema row claiming a 2 GiB payload: findings, never a crash', async () => {
    const { file, bytes } = fresh('hugepayload');
    const bad = Buffer.from(bytes);
    const cell = bad.readUInt16BE(100 + 8); // the first cell of sqlite_schema's root (page 1)
    Buffer.from([0x87, 0xff, 0xff, 0xff, 0x7f]).copy(bad, cell); // payload size 2^31 - 1
    fs.writeFileSync(file, bad);
    const r = await verify(file, 5);
    expect(r.ok).toBe(false);
    expect(sqliteIntegrity(file)).not.toEqual(['ok']);
  });

  it('cycles: an overflow chain, the freelist, and a b-tree child pointing back at its parent', async () => {
    const { file, bytes } = fresh('cycles');
    const roles = pageRoles(file).pages;
    const overflow = roles.filter((p) => p.role === 'overflow').map((p) => p.pgno);
    const b1 = Buffer.from(bytes);
    b1.writeUInt32BE(overflow[0]!, (overflow[1]! - 1) * 1024); // a later page of the chain points back
    fs.writeFileSync(file, b1);
    expect((await kinds(file, 3)).some((k) => k.startsWith('3:'))).toBe(true);

    const trunk = bytes.readUInt32BE(32);
    expect(trunk).toBeGreaterThan(0);
    const b2 = Buffer.from(bytes);
    b2.writeUInt32BE(trunk, (trunk - 1) * 1024); // the trunk's next trunk is itself
    fs.writeFileSync(file, b2);
    expect(await kinds(file)).toContain('4:cycle');

    const interior = roles.find((p) => p.kind === 'internal' && p.pgno !== 1)!;
    const b3 = Buffer.from(bytes);
    b3.writeUInt32BE(interior.pgno, (interior.pgno - 1) * 1024 + 8); // right child = itself
    fs.writeFileSync(file, b3);
    expect(await kinds(file, 2)).toContain('2:cycle');
    for (const b of [b1, b2, b3]) {
      fs.writeFileSync(file, b);
      expect(sqliteIntegrity(file)).not.toEqual(['ok']);
    }
  });

  it('a damaged page that lives in the WAL is reported with its frame', async () => {
    const { file, bytes } = fresh('walpage');
    const roles = pageRoles(file).pages;
    const leaf = roles.find((p) => p.tree === 't' && p.kind === 'leaf')!;
    const store = await open(file, { keepWal: true, autoCheckpoint: false });
    await store.commit([{ pgno: 1, data: bytes.subarray(0, 1024) }]);
    const bad = Buffer.from(bytes.subarray((leaf.pgno - 1) * 1024, leaf.pgno * 1024));
    bad[0] = 0x07; // not a b-tree page type
    const r = await store.commit([{ pgno: leaf.pgno, data: bad }]);
    await store.close();
    const found = (await verify(file, 1)).issues;
    expect(found).toEqual([expect.objectContaining({ level: 1, kind: 'page-type', pgno: leaf.pgno, frame: r.lastFrame })]);
    expect(sqliteIntegrity(file)).not.toEqual(['ok']);
  });

  it('the -shm against the WAL: a wrong page number or a frame the hash table cannot reach', async () => {
    const { file, bytes } = fresh('shmcheck');
    const store = await open(file, { keepWal: true, autoCheckpoint: false });
    const pages = Array.from({ length: 30 }, (_, i) => ({ pgno: i + 1, data: bytes.subarray(i * 1024, (i + 1) * 1024) }));
    await store.commit(pages.slice(0, 10));
    await store.commit(pages.slice(10));
    await store.close();
    expect((await verify(file, 1)).issues).toEqual([]);
    const shm = fs.readFileSync(`${file}-shm`);
    const bad = Buffer.from(shm);
    bad.writeUInt32LE(bad.readUInt32LE(136 + 4 * 6) + 1, 136 + 4 * 6); // frame 7's page number
    fs.writeFileSync(`${file}-shm`, bad);
    expect((await verify(file, 1)).issues).toEqual([expect.objectContaining({ level: 1, kind: 'shm-index', frame: 7, pgno: 7 })]);
    const noHash = Buffer.from(shm);
    noHash.fill(0, 16384, 32768); // the whole hash table of segment 0
    fs.writeFileSync(`${file}-shm`, noHash);
    const issues = (await verify(file, 1)).issues;
    expect(issues).toHaveLength(20); // capped
    expect(issues[0]).toMatchObject({ kind: 'shm-index', frame: 1, pgno: 1 });
  });

  it('garbage and tiny files are refused with WALNUT_CANTOPEN; a bad level is WALNUT_INVALID_ARGUMENT', async () => {
    const file = path.join(dir, 'garbage.db');
    fs.writeFileSync(file, Buffer.alloc(5000, 0x5a));
    await expect(verify(file, 5)).rejects.toMatchObject({ code: 'WALNUT_CANTOPEN' });
    fs.writeFileSync(file, Buffer.from('SQLite format 3\0'));
    await expect(verify(file, 5)).rejects.toMatchObject({ code: 'WALNUT_CANTOPEN' });
    await expect(verify(file, 6)).rejects.toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT' });
  }, 600_000); // longer than the 5-minute default: 186 s at load 20
});
