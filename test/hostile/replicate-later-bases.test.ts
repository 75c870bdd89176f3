// Hostile: later base images (replicate/base-image.ts: read from their snapshot into pooled
// records a part at a time, as each part is published) of databases of 512- and 65536-byte pages that SQLite grows and
// shrinks (VACUUM) between bases and during their reads, then stop() while a base may be in its
// read: the stream restores to the primary's pages, and a replica equals the primary.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { runPython } from '../helpers/children';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('walnut-hostile-bases-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const GROW_SHRINK = `
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
for n in range(1, 41):
    if n % 10 == 0:
        c.execute('DELETE FROM t WHERE id % 2 = 0')
        c.execute('VACUUM')
    else:
        c.execute('INSERT INTO t(v) VALUES (randomblob(?))', (3000 + 500 * n,))
    time.sleep(0.01)  # a later base can start between commits
print(n)
`;

describe.skipIf(NATS_SKIP !== null)('later base images under SQLite growing and shrinking the database', () => {
  for (const pageSize of [512, 65536]) {
    for (const thread of [false, true]) {
      it(`page size ${pageSize}, ${thread ? 'worker thread' : "store's loop"}: VACUUM between and during later bases, stop(): the restore equals the primary`, async () => {
        const server = await startNatsServer();
        started.push(server);
        const file = path.join(dir, `p${pageSize}-${thread}.db`);
        const db = new Database(file);
        db.pragma(`page_size = ${pageSize}`);
        db.pragma('journal_mode = WAL');
        db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
        for (let i = 0; i < 40; i++) db.prepare('INSERT INTO t(v) VALUES (randomblob(?))').run(2000 + i * 100);
        db.close();
        const store = await open(file);
        const stream = `bases${pageSize}${thread}`;
        const r = store.replicateTo({ servers: server.url, stream, thread, baseEveryMs: 1, maxMessageBytes: Math.max(64 << 10, 2 * pageSize + 64), stopTimeoutMs: 60_000 });
        const errors: string[] = [];
        r.on('error', (e: Error) => errors.push(e.message));
        await r.ready;
        const script = path.join(dir, 'grow-shrink.py');
        fs.writeFileSync(script, GROW_SHRINK);
        expect((await runPython(script, [file])).trim()).toBe('40');
        // walnut's own commit after SQLite's: the export sees every one of them
        const snap = await store.snapshot();
        const last = { pgno: snap.dbSize, data: Buffer.from(snap.readSync(snap.dbSize)) }; // committed again as it is
        snap.release();
        await store.commit([last]);
        await r.stop();
        expect(errors).toEqual([]);
        expect(r.metrics().publishedSeq).toBe(r.metrics().exportedSeq);
        const s2 = await store.snapshot();
        const primary = Buffer.concat(Array.from({ length: s2.dbSize }, (_, k) => s2.readRawSync(k + 1)));
        s2.release();
        await store.close();
        const out = path.join(dir, `${stream}-restored.db`);
        await restoreFromNats(out, { servers: server.url, stream });
        expect(Buffer.compare(fs.readFileSync(out), primary)).toBe(0);
      });
    }
  }
});
