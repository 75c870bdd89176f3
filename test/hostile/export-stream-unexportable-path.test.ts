// createExportStream(path) opened the database only once the stream existed, so a path that
// is not there, a directory, a file that is no SQLite database or a rollback-journal database
// came as the stream's 'error' WALNUT_CANTOPEN: with no 'error' listener (Node's rule: an
// 'error' event nobody listens to is thrown) that was an uncaught exception, the process gone.
// Now these are thrown by the call itself, before any stream or file exists, with the codes the
// open gave them (CANTOPEN with errno ENOENT / ENOTDIR, NotRegularFile, NotWalMode). What is
// found once the database is opened (a lock held past busyTimeout) is still the stream's 'error'.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { createExportStream, open } from '../../lib/index';
import { expectWalnutError } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('createExportStream of a path that is no WAL-mode database', () => {
  it('throws WALNUT_CANTOPEN at the call, as the open reports it, and creates nothing', () => {
    const text = path.join(dir, 'notes.txt');
    fs.writeFileSync(text, 'not a database, but more than the hundred bytes a header has: '.repeat(4));
    const empty = path.join(dir, 'empty.db');
    fs.writeFileSync(empty, '');
    const rollback = path.join(dir, 'rollback.db');
    execFileSync('python3', ['-c', 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("create table t(x)"); c.commit(); c.close()', rollback]);
    fs.mkdirSync(path.join(dir, 'folder'));
    const before = fs.readdirSync(dir).sort();
    const cases: [string, Record<string, unknown>][] = [
      [path.join(dir, 'missing.db'), { errno: 2, reason: undefined }],
      [path.join(dir, 'no-such-dir', 'x.db'), { errno: 2 }],
      [path.join(text, 'x.db'), { errno: 20 }],
      [path.join(dir, 'folder'), { reason: 'NotRegularFile' }],
      [text, { reason: undefined }],
      [empty, { reason: undefined }],
      [rollback, { reason: 'NotWalMode' }],
    ];
    for (const [p, fields] of cases) {
      const e = expectWalnutError(() => createExportStream(p), 'WALNUT_CANTOPEN', fields);
      expect(e.path, p).toBeDefined();
    }
    expect(fs.readdirSync(dir).sort()).toEqual(before); // no -wal, -shm or database made
  });

  it("a WAL-mode database still streams; what the open meets after the call (a store holding it exclusively) is the stream's 'error'", async () => {
    const db = path.join(dir, 'a.db');
    const store = await open(db, { pageSize: 1024 });
    await store.commit([{ pgno: 2, data: Buffer.alloc(1024, 3) }]);
    await store.close();
    let bytes = 0;
    for await (const chunk of createExportStream(db)) bytes += (chunk as Buffer).length;
    expect(bytes).toBeGreaterThan(2 * 1024);

    const holder = await open(db, { lockingMode: 'exclusive' });
    try {
      const busy = createExportStream(db, { busyTimeout: 0 }); // no throw: the database is one
      const e = await new Promise<Error>((resolve) => busy.once('error', resolve));
      expect(e).toMatchObject({ code: 'WALNUT_BUSY' });
    } finally {
      await holder.close();
    }
  });
});
