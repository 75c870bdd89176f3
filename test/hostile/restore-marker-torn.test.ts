// Hostile: the restore marker (.app.db.restore-asides, io/restore-asides.ts) as a crash or
// another tool can leave it. A restore killed (or the power lost) while registering leaves it
// empty, or its first line cut, or an entry cut: those are walnut's, listing no temporary file,
// so the next open removes the marker and the next restore writes over the cut part. A file at
// that name that is not walnut's (other bytes) is another tool's: an open ignores it and
// removes nothing, a restore to app.db is refused (WALNUT_CANTOPEN, reason RestoreMarker) and
// leaves it byte for byte.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { restore } from '../../lib/export/restore';
import { open } from '../../lib/index';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { newDatabaseStream } from '../helpers/new-database-stream';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let stream: Buffer;

function database(d: string): string {
  fs.mkdirSync(d);
  const db = path.join(d, 'app.db');
  execFileSync('sqlite3', [db, "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT); INSERT INTO t(who) VALUES ('old')"], { stdio: 'ignore' });
  return db;
}

const rows = (db: string): string => execFileSync('sqlite3', [db, "SELECT who || ':' || count(*) FROM t GROUP BY who"], { encoding: 'utf8' }).trim();

describe('the restore marker as a crash or another tool leaves it', () => {
  beforeAll(async () => {
    stream = fs.readFileSync(await newDatabaseStream(dir, false));
  });

  it.each([
    ['empty (killed between its create and its first write)', ''],
    ['its first line cut', 'walnut restore-as'],
    ['an entry cut', 'walnut restore-asides 1\n0123456'],
  ])('%s: an open removes it; a restore registers past it', async (name, content) => {
    const d = path.join(dir, name.split(' ')[0]! + name.length);
    const db = database(d);
    const marker = path.join(d, '.app.db.restore-asides');
    fs.writeFileSync(marker, content);
    await (await open(db)).close();
    expect(fs.existsSync(marker)).toBe(false);

    fs.writeFileSync(marker, content);
    await restore(stream, db, { force: true });
    expect(rows(db)).toBe('new:7');
    expect(fs.readdirSync(d).filter((f) => f.includes('.restore-'))).toEqual([]);
  });

  it('another tool\'s file at the marker\'s name: an open ignores it, a restore is refused (RestoreMarker), nothing removed', async () => {
    const d = path.join(dir, 'foreign');
    const db = database(d);
    const marker = path.join(d, '.app.db.restore-asides');
    const bytes = Buffer.from('some other program keeps notes here\n0123456789ab\n');
    fs.writeFileSync(marker, bytes);
    const lookalike = path.join(d, '.app.db.restore-0123456789ab'); // named as its "entry" says
    fs.writeFileSync(lookalike, 'not a restore');
    await (await open(db)).close();
    await expectRejectsWalnut(restore(stream, db, { force: true }), 'WALNUT_CANTOPEN', { reason: 'RestoreMarker' });
    expect(fs.readFileSync(marker).equals(bytes)).toBe(true);
    expect(fs.readFileSync(lookalike, 'utf8')).toBe('not a restore');
    expect(rows(db)).toBe('old:1');
  });
});
