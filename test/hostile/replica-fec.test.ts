// A replica whose own store is asked for the FEC sidecar (openReplica(path, { open: { fec } })):
// the replica opened its store without the sidecar's extension, so the option was accepted and
// silently did nothing (no -wal-fec, store.metrics().fec undefined: the replica's WAL
// unprotected). Now its store keeps the sidecar for the commits it applies.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { openReplica } from '../../lib/index';
import { runPython } from '../helpers/children';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir('walnut-hostile-replica-fec-');
const started: NatsNode[] = [];
afterAll(async () => {
  await stopNats(started);
});

describe.skipIf(NATS_SKIP !== null)('a replica opened with fec', () => {
  it('keeps the -wal-fec sidecar for the commits it applies', async () => {
    const server = await startNatsServer();
    started.push(server);
    const file = path.join(dir, 'primary.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t(w INTEGER, v BLOB)');
    db.close();
    const store = await open(file);
    const r = store.replicateTo({ servers: server.url, stream: 'fec', thread: false });
    await r.ready;
    expect((await runPython(path.join(__dirname, '../helpers/sqlite-fill.py'), [file, '50', '2000'])).trim()).toBe('50');
    await r.stop();
    const last = r.metrics().publishedSeq;
    await store.close();

    const file2 = path.join(dir, 'replica.db');
    const replica = await openReplica(file2, { servers: server.url, stream: 'fec', open: { fec: { repairSymbols: 2 }, autoCheckpoint: false } });
    try {
      await replica.waitFor(last);
      const fec = replica.store.metrics().fec;
      expect(fec).toBeDefined();
      expect(fec!.repairSymbols).toBe(2);
      await until(() => replica.store.metrics().fec!.groups >= 1);
      expect(fs.existsSync(`${file2}-wal-fec`)).toBe(true);
    } finally {
      await replica.close();
    }
  });
});

