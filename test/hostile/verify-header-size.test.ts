// verify and page 1's in-header database size. SQLite trusts it when it is valid: a raw walnut
// commit that grew the database without page 1 left it stale, SQLite then saw fewer pages (and
// its next commit dropped the rest) while verify found nothing at levels 1-3.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { verify } from '../../lib/integrity/verify';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

function sqliteDb(name: string): string {
  const file = path.join(dir, name);
  const s = new Database(file);
  s.pragma('journal_mode = WAL');
  s.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('a'), ('b')");
  s.close();
  return file;
}

const kinds = async (file: string, level: number) => (await verify(file, level)).issues.map((i) => `${i.level}:${i.kind}`);

describe('verify: page 1\'s in-header database size', () => {
  it('a commit that grew the database without page 1 is a level-1 finding; SQLite sees the header\'s size', async () => {
    const file = sqliteDb('grown.db');
    const store = await open(file, { keepWal: true });
    const size = (await store.snapshot()).dbSize;
    await store.commit([{ pgno: size + 2, data: Buffer.alloc(4096) }]); // no page 1: its in-header size stays `size`
    await store.close();
    expect(await kinds(file, 1)).toEqual(['1:header-page-count']);
    const issue = (await verify(file, 1)).issues[0]!;
    expect(issue).toMatchObject({ pgno: 1 });
    expect(issue.message).toContain(`page 1 says the database has ${size} pages but it has ${size + 2}`);
    const s = new Database(file);
    expect(s.pragma('page_count', { simple: true })).toBe(size); // what SQLite goes by
    s.close();
  });

  it('an in-header size past the database stays a level-1 finding (page-count: pages missing); SQLite calls it malformed', async () => {
    const file = sqliteDb('past.db');
    const fd = fs.openSync(file, 'r+');
    const header = Buffer.alloc(4);
    fs.readSync(fd, header, 0, 4, 28);
    const pages = header.readUInt32BE(0);
    header.writeUInt32BE(pages + 3, 0);
    fs.writeSync(fd, header, 0, 4, 28);
    fs.closeSync(fd);
    expect(await kinds(file, 5)).toContain('1:page-count');
    const s = new Database(file, { readonly: true });
    expect(() => s.prepare('SELECT count(*) FROM t').get()).toThrow(/malformed/);
    s.close();
  });

  it('no finding on databases SQLite wrote and on an in-header size SQLite does not trust', async () => {
    const file = sqliteDb('healthy.db');
    expect(await kinds(file, 5)).toEqual([]);
    // version-valid-for (92) differs from the change counter (24): SQLite uses the file's size
    const fd = fs.openSync(file, 'r+');
    const b = Buffer.alloc(4);
    fs.readSync(fd, b, 0, 4, 92);
    b.writeUInt32BE(b.readUInt32BE(0) + 1, 0);
    fs.writeSync(fd, b, 0, 4, 92);
    b.writeUInt32BE(999, 0);
    fs.writeSync(fd, b, 0, 4, 28);
    fs.closeSync(fd);
    expect(await kinds(file, 5)).toEqual([]);
  });
});
