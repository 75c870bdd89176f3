// Hostile (break50): restoreFromNats with `until` at every commit of a stream whose later base
// images (baseEveryMs 1, parts of 64 KiB) have log messages stored among their parts, a python3
// writer committing one row a commit: each restore holds exactly the rows of the commits up to
// `until` (count = until - offset, one offset for all), and passes integrity_check.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { connectNats, HEADER, messageAt, subjectsOf } from '../../lib/replicate/nats';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { pythonSqlite } from '../helpers/children';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('walnut-hostile-until-in-later-base-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('until among a later base\'s parts', () => {
  it('every commit restorable, exactly', async () => {
    const server = await startNatsServer();
    started.push(server);
    const file = path.join(dir, 'p.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
    db.exec('CREATE TABLE pad(v BLOB)');
    const ins = db.prepare('INSERT INTO pad(v) VALUES (randomblob(3500))');
    db.transaction(() => {
      for (let i = 0; i < 500; i++) ins.run();
    })();
    db.close();
    const store = await open(file);
    const stream = 'untilbase';
    const r = store.replicateTo({ servers: server.url, stream, baseEveryMs: 1, maxMessageBytes: 64 << 10 });
    const errors: string[] = [];
    r.on('error', (e: Error) => errors.push(e.message));
    await r.ready;
    const bases: number[] = [];
    r.on('base', (b: { seq: number }) => bases.push(b.seq));
    expect(await pythonSqlite(file, `
import time
for n in range(1, 121):
    c.execute('INSERT INTO t(id, v) VALUES (?, randomblob(200))', (n,))
    time.sleep(0.004)
print(n)
`)).toBe('120');
    const snap = await store.snapshot();
    await store.commit([{ pgno: 1, data: Buffer.from(snap.readSync(1)) }]);
    snap.release();
    await r.stop();
    expect(errors).toEqual([]);
    const last = r.metrics().publishedSeq;
    await store.close();
    expect(bases.length).toBeGreaterThan(5);
    // (the case: log messages stored among a later base's parts)
    const link = await connectNats([server.url], () => false, 'test');
    let among = 0;
    try {
      const info = await link.jsm.streams.info(stream);
      let inBase = false;
      for (let seq = 1; seq <= info.state.last_seq; seq++) {
        const m = await messageAt(link, stream, seq);
        if (m === null) continue;
        if (m.subject === subjectsOf(stream).base) inBase = m.header.get(HEADER.BASE_FINAL) !== '1';
        else if (inBase) among++;
      }
    } finally {
      await link.nc.close();
    }
    expect(among).toBeGreaterThan(0);
    const offsets = new Map<number, number[]>();
    const firstBase = bases[0]!;
    for (let until = firstBase; until <= last; until += 7) {
      const out = path.join(dir, `r${until}.db`);
      const res = await restoreFromNats(out, { servers: server.url, stream, until });
      const rdb = new Database(out, { readonly: true });
      const rows = (rdb.prepare('SELECT count(*) AS n, coalesce(max(id), 0) AS m FROM t').get() as { n: number; m: number });
      expect(rdb.pragma('integrity_check', { simple: true })).toBe('ok');
      rdb.close();
      expect(rows.n).toBe(rows.m);
      const off = until - rows.n;
      offsets.set(off, [...(offsets.get(off) ?? []), until]);
      void res;
    }
    // the last commit is walnut's own (no row); the others one row each
    const keys = [...offsets.keys()];
    expect(keys.length, JSON.stringify([...offsets])).toBeLessThanOrEqual(2);
    if (keys.length === 2) expect(offsets.get(Math.max(...keys))).toEqual([last]);
  });
});
