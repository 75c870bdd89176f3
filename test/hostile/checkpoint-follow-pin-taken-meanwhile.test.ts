// store.checkpoint('restart' | 'truncate') called as the store's own follow export starts
// (exportTo(..., { follow: true }) in the same tick). The export's first pass reads its base
// image under a snapshot; the checkpoint, finding no follow pin yet (wal-index.ts followWal),
// waited for READ(1..4) as for readers; the export then took its pin (a READ slot held for as
// long as it follows) and the checkpoint waited for that slot, holding WRITE, for the whole
// busy timeout: every commit of the store waited with it (found racing verbs against close(),
// commits ~1.1 s late and some failing WALNUT_BUSY "held by another connection" with no other
// connection there), and the checkpoint came back busy, nothing restarted or truncated.
// Now the wait gives up once the connection's own pin appears and goes past the pin as it does
// when the pin was there first (checkpoint-own-follower.test.ts): not busy, a truncate cuts the
// WAL to 0 bytes, and the stream (with a commit after) restores to the source.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { restore } from '../../lib/export/restore';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { pageHashes } from '../helpers/page-hashes';
import { Database } from '../helpers/sqlite';
import { sqliteIntegrity } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir();
let n = 0;

/** A WAL-mode database SQLite built (one 16 KiB row over overflow pages), nothing in a -wal. */
function database(): string {
  const file = path.join(dir, `f${n++}.db`);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(v BLOB)');
  db.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(4 * 4096, 1));
  db.close();
  return file;
}

describe("a restart or truncate checkpoint called as the store's own follow export starts", () => {
  for (const mode of ['restart', 'truncate'] as const) {
    for (const wal of ['an empty WAL', 'a WAL of 3 commits'] as const) {
      it(`${mode}, ${wal}: not busy${mode === 'truncate' ? ', the WAL cut to 0 bytes' : ''}; the next commit follows; the stream restores to the source`, async () => {
        const file = database();
        // an overflow page (its first 4 bytes link the next), read from the file: a snapshot the
        // store took and released before the export hid the case (the export then found a slot)
        const page3 = fs.readFileSync(file).subarray(2 * 4096, 3 * 4096);
        const store = await open(file, { busyTimeout: 1000, autoCheckpoint: false });
        try {
          const rewrite = (v: number) => [{ pgno: 3, data: Buffer.concat([page3.subarray(0, 4), Buffer.alloc(4092, v)]) }];
          if (wal === 'a WAL of 3 commits') for (let v = 2; v <= 4; v++) await store.commit(rewrite(v));
          const out = new PassThrough();
          const chunks: Buffer[] = [];
          out.on('data', (c: Buffer) => chunks.push(c));
          const exported = store.exportTo(out, { follow: true });
          const r = await store.checkpoint(mode);
          expect(r).toMatchObject({ mode, busy: false });
          if (mode === 'truncate') {
            expect(r.walFrames).toBe(0);
            expect(fs.statSync(`${file}-wal`).size, 'the truncate cut the WAL').toBe(0);
          }
          await store.commit(rewrite(9));
          await exported.stop();
          const target = path.join(dir, `f${n++}.restored.db`);
          await restore(Buffer.concat(chunks), target);
          expect(sqliteIntegrity(target)).toEqual(['ok']);
          const restored = await open(target);
          try {
            expect(await pageHashes(restored)).toEqual(await pageHashes(store));
          } finally {
            await restored.close();
          }
        } finally {
          await store.close();
        }
        expect(sqliteIntegrity(file)).toEqual(['ok']);
      });
    }
  }
});
