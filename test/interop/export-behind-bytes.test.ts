// ExportHandle.behindBytes(): in follow mode, the bytes of committed WAL frames the export has not
// read and handed to its sink yet. A sink that is slow (replication's worker short of CPU) makes
// the export wait, and the backlog stays in the WAL, where no queue of the sink's counts it (the
// replication lag bound did not see it: metrics().exportBehindBytes now reports it). Here a sink
// that stops answering: walnut's own commits, then a sqlite3 process writing 16,000+ frames (past
// the fourth wal-index segment) while the export waits; then the sink answers again and the
// export catches up to 0 behind, with every commit exported.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { runPython } from '../helpers/children';
import { holdableSink } from '../helpers/export-stream';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir('walnut-export-behind-');
const HELPERS = path.join(__dirname, '..', 'helpers');

describe('ExportHandle.behindBytes()', () => {
  it("walnut's commits while the sink waits: the WAL frames not read are counted, then 0 once it answers", async () => {
    const store = await open(path.join(dir, 'own.db'), { pageSize: 4096 });
    const frameSize = 24 + 4096;
    const page = Buffer.alloc(4096, 1);
    await store.commit([{ pgno: 2, data: page }]);
    const s = holdableSink();
    const handle = store.exportTo(s.sink, { follow: true, pollMs: 5 });
    try {
      expect(handle.behindBytes()).toBe(0);
      await until(() => s.flushes() >= 1, 10_000); // the base image and the first pass (the WAL as it was) are out
      const first = s.commits();
      const calls = s.calls();
      s.hold();
      await store.commit([{ pgno: 3, data: page }]);
      await until(() => s.calls() > calls, 10_000); // the export holds this one's records in the waiting sink
      for (let i = 0; i < 50; i++) await store.commit([{ pgno: 4 + i, data: page }]);
      // the 50 after it, and (its position moves once the sink took it) possibly that one
      const behind = handle.behindBytes();
      expect(behind).toBeGreaterThanOrEqual(50 * frameSize);
      expect(behind).toBeLessThanOrEqual(51 * frameSize);
      s.release();
      await until(() => handle.behindBytes() === 0 && s.commits() >= first + 51, 10_000);
      expect(s.commits()).toBe(first + 51);
    } finally {
      s.release();
      await handle.stop();
      await store.close();
    }
  }, 60_000);

  it('the first pass (the base image) waits in the sink: the commits made meanwhile are behind, not 0', async () => {
    const store = await open(path.join(dir, 'first-pass.db'), { pageSize: 4096 });
    const frameSize = 24 + 4096;
    const page = Buffer.alloc(4096, 2);
    for (let i = 0; i < 20; i++) await store.commit([{ pgno: 2 + i, data: page }]);
    const before = store.metrics().walFrames; // the WAL's frames as the export begins (its base is at most them)
    const s = holdableSink();
    s.hold(); // from its first record on: the base image waits, its snapshot held
    const handle = store.exportTo(s.sink, { follow: true, pollMs: 5 });
    try {
      await until(() => s.calls() >= 1, 10_000); // the export has its snapshot and waits in the base image
      for (let i = 0; i < 30; i++) await store.commit([{ pgno: 30 + i, data: page }]);
      // the 30 commits after the snapshot, and at most the frames the WAL had past the base
      const behind = handle.behindBytes();
      expect(behind).toBeGreaterThanOrEqual(30 * frameSize);
      expect(behind).toBeLessThanOrEqual((30 + before) * frameSize);
      s.release();
      await until(() => handle.behindBytes() === 0 && s.flushes() >= 2, 10_000);
    } finally {
      s.release();
      await handle.stop();
      await store.close();
    }
  }, 60_000);

  it('a sqlite3 process writes 16,000+ frames while the sink waits: all of them are behind, then exported', async () => {
    const db = path.join(dir, 'sqlite.db');
    const init = new Database(db);
    init.pragma('page_size = 1024'); // before WAL mode, which keeps the page size
    init.exec('CREATE TABLE t(w INTEGER, v BLOB)');
    init.pragma('journal_mode = WAL');
    init.close();
    const store = await open(db);
    const frameSize = 24 + store.pageSize;
    expect(store.pageSize).toBe(1024);
    const s = holdableSink();
    const handle = store.exportTo(s.sink, { follow: true, pollMs: 5 });
    try {
      await until(() => s.flushes() >= 1, 10_000); // base and first pass out
      const first = s.commits();
      s.hold();
      // 4-8 KB blobs (5-9 pages of 1 KiB a row): 3,000 commits make 16,000+ frames; the export's
      // pin keeps sqlite3's checkpoints from restarting the WAL under it (synchronous NORMAL: the
      // writer only fills the WAL; 3,000 fsyncs were most of this test's time)
      const out = await runPython(path.join(HELPERS, 'sqlite-writer.py'), [db, '0', '1', '1000', '0', '3000', '0', 'NORMAL']);
      expect(Number(out.trim().split('\n')[0])).toBeGreaterThanOrEqual(3000);
      const behind = handle.behindBytes();
      expect(behind).toBeGreaterThanOrEqual(16_000 * frameSize);
      s.release();
      await until(() => handle.behindBytes() === 0 && s.commits() >= first + 3000, 60_000);
      expect(s.commits()).toBe(first + 3000);
    } finally {
      s.release();
      await handle.stop();
      await store.close();
    }
    const check = new Database(db, { readonly: true });
    try {
      expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(check.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 3000 });
    } finally {
      check.close();
    }
  }, 180_000);
});
