// A WalnutFile export sink closed by its owner under the export ends it with WALNUT_IO, reason
// SinkClosed (README; WALNUT_CLOSED stays the store's own close()). That held when the close
// met the export's native record writes (framing.ts appendDirect), but not when it met the
// sink's buffered flush (the stream's magic and the base image's first records, the records a
// Writable-style pass queues): there it was WALNUT_IO with no reason, "the target may hold part
// of the batch", so a caller could not tell its own close from a disk failure. Closed at once
// after exportTo() (closeSync, or close() not awaited), plain and follow: reason SinkClosed every
// time, the store goes on committing, and a second export to a new file restores.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, restore, WalnutFile } from '../../lib/index';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PAGE = 4096;

describe('the export sink file closed at once after exportTo()', () => {
  for (const follow of [false, true]) {
    for (const how of ['closeSync', 'close'] as const) {
      it(`${follow ? 'follow' : 'plain'} export, sink ${how}(): WALNUT_IO reason SinkClosed; the store goes on`, async () => {
        const name = `${follow ? 'follow' : 'plain'}-${how}`;
        const store = await open(path.join(dir, `${name}.db`), { pageSize: PAGE });
        try {
          for (let i = 0; i < 20; i++) await store.commit([{ pgno: 2 + i, data: Buffer.alloc(PAGE, i + 1) }]);
          const sink = await WalnutFile.open(path.join(dir, `${name}.ark`), { create: true, truncate: true });
          const handle = store.exportTo(sink, follow ? { follow: true, pollMs: 1 } : {});
          const closing = how === 'closeSync' ? sink.closeSync() : sink.close();
          await expectRejectsWalnut(handle.done, 'WALNUT_IO', { reason: 'SinkClosed' });
          await closing;
          expect(await store.commit([{ pgno: 30, data: Buffer.alloc(PAGE, 9) }])).toMatchObject({ durable: true });
          const again = await WalnutFile.open(path.join(dir, `${name}-2.ark`), { create: true, truncate: true });
          await store.exportTo(again).done;
          await again.close();
          expect(await restore(fs.createReadStream(path.join(dir, `${name}-2.ark`)), path.join(dir, `${name}-restored.db`))).toMatchObject({ dbPages: 30, stoppedBy: null });
        } finally {
          await store.close();
        }
      });
    }
  }
});
