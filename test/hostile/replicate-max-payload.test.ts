// Hostile: replication against NATS servers whose max_payload (the largest message a server
// takes, 1 MiB unless configured) is below the publisher's maxMessageBytes. The server refuses
// such a message at every try ('max_payload size exceeded'): found with maxMessageBytes 4 MiB
// against a default server, where nothing was ever published (publishedSeq 0 of 6, lastError the
// refusal, no 'error' until stop() ran out of stopTimeoutMs), and the same with the default
// 900 KiB against a server configured for 256 KiB, and against an existing stream whose
// max_msg_size is 100,000 ('message size exceeds maximum allowed'). The publisher now builds
// messages within the server's max_payload and the stream's max_msg_size (less room for
// headers); a server too small for one page's frame is refused at once: 'error' and `ready`
// WALNUT_INVALID_ARGUMENT reason maxMessageBytes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { spawnOutput } from '../helpers/children';
import { freePort, NATS_SKIP, NatsNode, stopNats } from '../helpers/nats';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir('walnut-hostile-max-payload-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

/** A JetStream server on a free port, max_payload as given (undefined: the server's default, 1 MiB). */
async function server(maxPayload?: number): Promise<NatsNode> {
  const args: string[] = [];
  if (maxPayload !== undefined) {
    const conf = path.join(dir, `max-payload-${maxPayload}.conf`);
    fs.writeFileSync(conf, `max_payload: ${maxPayload}\n`);
    args.push('-c', conf);
  }
  const node = new NatsNode(await freePort(), args, tmpDir('walnut-nats-'));
  started.push(node);
  await node.start();
  return node;
}

async function sqlite3(file: string, sql: string): Promise<void> {
  const run = await spawnOutput('sqlite3', ['-bail', '-cmd', '.timeout 10000', file], { input: sql });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
}

function rows(file: string): string {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    return JSON.stringify(db.prepare('SELECT id, hex(v) AS v FROM t ORDER BY id').all());
  } finally {
    db.close();
  }
}

function newDb(name: string, pageSize: number): string {
  const file = path.join(dir, `${name}.db`);
  const db = new Database(file);
  db.pragma(`page_size = ${pageSize}`);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
  db.close();
  return file;
}

describe.skipIf(NATS_SKIP !== null)(`replication within the server's max_payload${NATS_SKIP ? ` (skipped: ${NATS_SKIP})` : ''}`, () => {
  it.each([
    { name: 'maxMessageBytes 4 MiB, a default server (1 MiB)', maxPayload: undefined, maxMessageBytes: 4 << 20, thread: true },
    { name: 'the default maxMessageBytes (900 KiB), a server of 256 KiB', maxPayload: 256 << 10, maxMessageBytes: undefined, thread: false },
    { name: 'the default maxMessageBytes, an existing stream of max_msg_size 100,000', maxPayload: undefined, maxMessageBytes: undefined, thread: true, maxMsgSize: 100_000 },
  ])('$name: every commit is published (a 6 MB one among them) and restores', async ({ name, maxPayload, maxMessageBytes, thread, maxMsgSize }) => {
    const nats = await server(maxPayload);
    const file = newDb(name.replace(/[^a-z0-9]+/gi, '-'), 4096);
    const stream = `payload${maxPayload ?? 0}${maxMsgSize ?? ''}`;
    if (maxMsgSize !== undefined) {
      const { connect } = await import('@nats-io/transport-node');
      const { jetstreamManager } = await import('@nats-io/jetstream');
      const nc = await connect({ servers: nats.url });
      await (await jetstreamManager(nc)).streams.add({ name: stream, subjects: [`walnut.${stream}.>`], max_msg_size: maxMsgSize });
      await nc.close();
    }
    const store = await open(file);
    try {
      const r = store.replicateTo({ servers: nats.url, stream, thread, ...(maxMessageBytes === undefined ? {} : { maxMessageBytes }) });
      const errors: string[] = [];
      r.on('error', (e: Error) => errors.push(e.message));
      await r.ready;
      await sqlite3(file, "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 300) INSERT INTO t SELECT i, randomblob(20000) FROM s;");
      for (let i = 1; i <= 5; i++) await sqlite3(file, `UPDATE t SET v = randomblob(30000) WHERE id = ${i};`);
      await r.stop();
      const m = r.metrics();
      expect(errors).toEqual([]);
      expect(m.exportedSeq).toBe(6);
      expect(m.publishedSeq).toBe(6);
      const out = path.join(dir, `${stream}-restored.db`);
      expect(await restoreFromNats(out, { servers: nats.url, stream })).toMatchObject({ lastCommitSeq: 6, stoppedBy: null });
      expect(rows(out)).toBe(rows(file));
    } finally {
      await store.close();
    }
  }, 60_000);

  it('a server too small for one frame of a 65536-byte page: ready and an error say so (WALNUT_INVALID_ARGUMENT maxMessageBytes)', async () => {
    const nats = await server(64 << 10);
    const file = newDb('page-65536', 65536);
    const store = await open(file);
    try {
      const r = store.replicateTo({ servers: nats.url, stream: 'tiny', stopTimeoutMs: 2000 });
      const errors: { code?: string; reason?: string }[] = [];
      r.on('error', (e: { code?: string; reason?: string }) => errors.push(e));
      await expect(r.ready).rejects.toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'maxMessageBytes' });
      await r.stop();
      expect(errors).toMatchObject([{ code: 'WALNUT_INVALID_ARGUMENT', reason: 'maxMessageBytes' }]);
    } finally {
      await store.close();
    }
  }, 60_000);
});
