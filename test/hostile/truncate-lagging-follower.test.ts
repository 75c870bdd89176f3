// checkpoint('truncate') beside the store's own follow export that lags far behind (a sink that
// stalls): a WAL of 16,000+ frames (its wal-index spans 4+ segments of the -shm). Up to the
// hand-over limit (MAX_HANDOVER_BYTES, 64 MiB) the truncate hands the unread frames over and cuts
// the WAL to 0 bytes; past it the truncate is busy and the WAL stays. Either way the stream,
// restored after the store's close, equals the source byte for byte; nothing reports a frame
// missing from the WAL, nothing hangs. The sink stalls once the export follows (about 10 MB in:
// the base of 2,000 pages and a commit, plus what its reads hold): 16,000 frames leave it
// ~55 MB behind, 22,000 frames ~80 MB.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { restore } from '../../lib/export/restore';
import { stallableSink } from '../helpers/export-stream';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();
const PAGE = 4096;
const FRAME = PAGE + 24;

function page(pgno: number, n: number): Buffer {
  const b = Buffer.alloc(PAGE);
  for (let i = 0; i < PAGE; i += 4) b.writeUInt32LE((pgno * 2654435761 + n * 40503 + i) >>> 0, i);
  return b;
}


async function run(name: string, frames: number, expectBusy: boolean) {
  const src = path.join(dir, `${name}.db`);
  const store = await open(src, { busyTimeout: 1000, autoCheckpoint: false, synchronous: 'normal' });
  let n = 0;
  // 200 pages a commit over pages 2..2001
  const commitBatch = (pages: number) =>
    store.commit(
      Array.from({ length: pages }, (_, i) => {
        const pgno = 2 + ((n * 7 + i) % 2000);
        return { pgno, data: page(pgno, n) };
      }),
    ).then(() => n++);
  for (let i = 0; i < 10; i++) await commitBatch(200); // a base of 2,000 pages
  const sink = stallableSink(1);
  const handle = store.exportTo(sink.w, { follow: true, pollMs: 5 });
  let result;
  try {
    // the export follows the WAL: it took a commit made after its base. (Waited for, not slept:
    // 300 ms had left it at 8 bytes on a loaded machine, and a truncate beside an export still in
    // its base image was busy.) Well into its base first, so that its snapshot is taken.
    const exported = (): number => sink.chunks.reduce((a, c) => a + c.length, 0);
    await until(() => exported() >= 1000 * PAGE);
    await commitBatch(200);
    await until(() => handle.behindBytes() === 0);
    sink.stall(); // then its peer stops reading
    while (store.metrics().walFrames < frames) await commitBatch(200);
    const walBytes = fs.statSync(`${src}-wal`).size;
    expect(walBytes).toBeGreaterThan(16_000 * FRAME);
    const sent = exported();
    const t0 = performance.now();
    result = await store.checkpoint('truncate');
    const ms = performance.now() - t0;
    console.log(`${name}: ${sent} bytes exported before the stall, a WAL of ${walBytes} bytes, truncate ${JSON.stringify(result)} in ${Math.round(ms)} ms`);
    // (no bound on `ms`: 5 s was a speed check a loaded machine could fail copying 64 MB, and it
    // told nothing of a wait for the export, which busyTimeout (1 s) ends: the sink stays stalled
    // until after the truncate, so a hang would be the suite's hang timeout)
    if (expectBusy) {
      expect(result.busy).toBe(true);
      expect(fs.statSync(`${src}-wal`).size).toBe(walBytes);
    } else {
      expect(result).toMatchObject({ busy: false, walFrames: 0 });
      expect(fs.statSync(`${src}-wal`).size).toBe(0);
    }
    for (let i = 0; i < 20; i++) await commitBatch(50); // the WAL starts again (or goes on)
    sink.release();
    const truncateAgain = await store.checkpoint('truncate'); // once the sink drains (or while it does)
    expect(truncateAgain.walFrames === 0 || truncateAgain.busy).toBe(true);
    for (let i = 0; i < 5; i++) await commitBatch(50);
  } finally {
    sink.release();
    await handle.stop();
    await store.close();
  }
  expect(fs.existsSync(`${src}-wal`)).toBe(false);
  const target = path.join(dir, `${name}-restored.db`);
  const r = await restore(Readable.from([Buffer.concat(sink.chunks)]), target);
  expect(r.stoppedBy).toBeNull();
  expect(r.lastCommitSeq).toBe(n);
  expect(fs.readFileSync(target).equals(fs.readFileSync(src))).toBe(true);
  return result;
}

describe("checkpoint('truncate') beside a follow export lagging far behind", () => {
  it('16,000 unread frames (under the hand-over limit): not busy, the WAL cut to 0 bytes, the stream whole', async () => {
    await run('under', 16_000, false);
  });

  it('past 64 MiB unread: busy, the WAL as it was, the stream whole once the sink drains', async () => {
    await run('over', 22_000, true);
  });
});
