// A replica opened through a symbolic link (`openReplica('replica-link.db')`, the link naming
// replica-real.db) kept its position file beside the link (replica-link.db-replica), while its
// store kept the -wal and -shm beside the file the link names. walnut/sql decides that a database
// is a replica's (read-only by default) by the position file beside the path it is given or the
// file that path resolves to, so the replica's database opened by its own name (absolute,
// relative, through a directory's `..`, or /proc/self/fd/N) was read-write: on the old code
// db.readOnly was false for all four and a write was taken (waiting for the live replica's write
// lock; at rest, acknowledged and later lost). Now the position file sits beside the database
// file (position.ts fileOf): every name of the replica's file opens read-only, reason Replica.
// A position file a replica of before left beside the link is moved there as the replica opens
// again through the link, and the replica resumes from it (it was NotAReplica otherwise).
// Real nats-server (test/helpers/nats.ts; skipped with a message where it is not installed).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { openReplica, type Replica } from '../../lib/replicate/replica';
import type { ReplicationHandle } from '../../lib/replicate/publisher';
import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { newPrimary } from '../helpers/replicating';
import { tmpDir } from '../helpers/tmp';
import { WAIT_MS } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);
expectNoUnhandledRejections();

const dir = tmpDir('walnut-sql-read-only-replica-link-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

/** Waits until the replica holds every commit the primary made so far, the replication going on (caughtUp stops it: a new one is a new session, a re-base). */
async function applied(r: ReplicationHandle, replica: Replica): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (r.metrics().publishedSeq !== r.metrics().exportedSeq) {
    if (Date.now() > deadline) throw new Error(`not published in ${WAIT_MS} ms: ${JSON.stringify(r.metrics(), (_, x: unknown) => (typeof x === 'bigint' ? String(x) : x))}`);
    await new Promise((res) => setTimeout(res, 10));
  }
  const m = r.metrics();
  await replica.waitFor(m.publishedSeq, m.session);
}

/** db.readOnly of walnut/sql opened at each of `names` (run from `dir`, so relative names are the replica's). */
async function readOnlyByName(names: string[]): Promise<Record<string, boolean>> {
  const cwd = process.cwd();
  process.chdir(dir);
  const seen: Record<string, boolean> = {};
  try {
    for (const name of names) {
      const db = await openDatabase(name);
      try {
        seen[name] = db.readOnly;
        if (db.readOnly) await expectRejectsWalnut(db.run('INSERT INTO t(w, v) VALUES (9, 9)'), 'WALNUT_READONLY', { reason: 'Replica' });
      } finally {
        await db.close();
      }
    }
  } finally {
    process.chdir(cwd);
  }
  return seen;
}

describe.skipIf(NATS_SKIP !== null)('openDatabase on the file of a replica opened through a symbolic link', () => {
  it('is read-only by every name of the file (absolute, relative, via .., /proc/self/fd/N, the link); a position file left beside the link is moved beside the file and resumed from', async () => {
    const server = await startNatsServer();
    started.push(server);
    const primary = await openDatabase(newPrimary(dir));
    const r = primary.store.replicateTo({ servers: server.url, stream: 'rolink', stopTimeoutMs: 60_000 });
    await r.ready;
    for (let i = 0; i < 5; i++) await primary.run('INSERT INTO t(w, v) VALUES (1, ?)', [i]);
    const real = path.join(dir, 'replica-real.db');
    const link = path.join(dir, 'replica-link.db');
    fs.symlinkSync('replica-real.db', link); // dangling: the replica creates the file it names
    fs.mkdirSync(path.join(dir, 'sub'));
    let replica = await openReplica(link, { servers: server.url, stream: 'rolink' });
    let fd = -1;
    try {
      await applied(r, replica);
      fd = fs.openSync(real, 'r');
      const names = [real, 'replica-real.db', './sub/../replica-real.db', `/proc/self/fd/${fd}`, link, 'replica-link.db'];
      expect(await readOnlyByName(names)).toEqual(Object.fromEntries(names.map((n) => [n, true])));
      expect(fs.existsSync(`${real}-replica`)).toBe(true); // beside the file, as its -wal and -shm
      expect(fs.existsSync(`${link}-replica`)).toBe(false);
    } finally {
      if (fd >= 0) fs.closeSync(fd);
      await replica.close();
    }

    // a replica of before left its position file beside the link: opened again through the
    // link it moves it beside the file and resumes from it (no new base image)
    fs.renameSync(`${real}-replica`, `${link}-replica`);
    const rebases: unknown[] = [];
    replica = await openReplica(link, { servers: server.url, stream: 'rolink' });
    replica.on('rebase', (e: unknown) => rebases.push(e));
    try {
      expect(fs.existsSync(`${real}-replica`)).toBe(true);
      expect(fs.existsSync(`${link}-replica`)).toBe(false);
      for (let i = 0; i < 5; i++) await primary.run('INSERT INTO t(w, v) VALUES (2, ?)', [i]);
      await applied(r, replica);
      expect(rebases).toEqual([]);
      expect(await readOnlyByName([real])).toEqual({ [real]: true });
      const ro = await openDatabase(real);
      expect(await ro.get('SELECT count(*) AS n FROM t')).toEqual({ n: 10 });
      await ro.close();
    } finally {
      await replica.close();
      await r.stop();
      await primary.close();
    }
  }, 60_000);
});
