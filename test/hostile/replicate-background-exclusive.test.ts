// replicateTo's `background: true` moves the replication worker thread to the kernel's
// background class (SCHED_IDLE); with `thread: false` there is no worker and it is refused
// (reason background: asked for and silently not had). A store in lockingMode 'exclusive' has
// no worker either (the publisher runs on the store's own loop), and there `background: true`,
// alone or with `thread: true`, was taken without a word and not had: the publisher ran in the
// normal class on the store's thread. Now it is refused there too (WALNUT_INVALID_ARGUMENT reason
// background) before anything starts; without it the exclusive store replicates as before.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { expectWalnutError } from '../helpers/expect-error';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();

describe("replicateTo background: true on a store in lockingMode 'exclusive'", () => {
  it('is refused, WALNUT_INVALID_ARGUMENT reason background, with the worker thread asked for or not', async () => {
    const store = await open(path.join(dir, 'refused.db'), { lockingMode: 'exclusive' });
    try {
      for (const thread of [undefined, true]) {
        const e = expectWalnutError(() => store.replicateTo({ servers: 'nats://127.0.0.1:1', stream: 's', background: true, thread }), 'WALNUT_INVALID_ARGUMENT', { reason: 'background' });
        expect(e.message).toMatch(/exclusive/);
      }
    } finally {
      await store.close();
    }
  });
});

describe.skipIf(NATS_SKIP !== null)("replicateTo on a store in lockingMode 'exclusive' without background: true", () => {
  let server: NatsNode;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(() => stopNats([server]));

  for (const background of [undefined, false]) {
    it(`background ${String(background)}: replicates on the store's loop`, async () => {
      const store = await open(path.join(dir, `exclusive-${String(background)}.db`), { lockingMode: 'exclusive' });
      try {
        const r = store.replicateTo({ servers: server.url, stream: `exclusive-${String(background)}`, background });
        await r.ready;
        const page = Buffer.alloc(store.pageSize, 3);
        for (let i = 0; i < 5; i++) await store.commit([{ pgno: 2 + i, data: page }]);
        await until(() => r.metrics().publishedSeq >= 5, 30_000, () => r.metrics());
        await r.stop();
      } finally {
        await store.close();
      }
    }, 60_000);
  }
});
