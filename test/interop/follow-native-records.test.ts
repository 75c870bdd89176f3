// Follow mode's native records (native/commit_records.h: the WAL read, framed and written to
// the sink in one op) on a live database written at once by walnut committers (walnut/sql,
// group-committed) and a python3/sqlite3 process, past 4 wal-index segments (16,000+ frames in
// one generation: no checkpoint runs), followed by two exports at once, one to a file (the
// native op writes the sink) and one to a Writable (the native op frames into memory): each
// stream restores to exactly the source's rows and passes integrity_check. Also the export's
// failures with its sink: the sink file closed under a follow export (WALNUT_IO, reason
// SinkClosed: the sink failed; WALNUT_CLOSED stays the store's close()), a sink file whose
// descriptor went bad (WALNUT_IO), each leaving the store usable.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/index';
import { restore } from '../../lib/export/restore';
import { WalnutFile } from '../../lib/io/file';
import { openDatabase } from '../../lib/sql';
import { HELPERS, startPython } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { firstDifference, writerRows as rows } from '../helpers/writer-rows';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const PAGE = 4096;
/**
 * The live database's page size: 1 KiB, so its rows (3-12 KB blobs) are several overflow pages
 * each and 16,500 frames are 17 MB to write, follow, restore and compare (at 4 KiB, 68 MB:
 * most of the test's time).
 */
const LIVE_PAGE = 1024;
/** Past 4 wal-index segments (4062 + 3 x 4096 frames). */
const FRAMES = 16_500;

const walFrames = (db: string): number => Math.max(0, Math.floor(((fs.statSync(`${db}-wal`, { throwIfNoEntry: false })?.size ?? 0) - 32) / (24 + LIVE_PAGE)));

describe('follow export, native records, beside walnut committers and a sqlite3 process', () => {
  it(`streams every commit of a WAL past 4 wal-index segments (${FRAMES}+ frames) to a file and to a Writable; both restore to the source`, async () => {
    const src = path.join(dir, 'live.db');
    const init = new Database(src);
    init.pragma(`page_size = ${LIVE_PAGE}`);
    init.pragma('journal_mode = WAL');
    init.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
    init.close();

    const db = await openDatabase(src, { autoCheckpoint: false, synchronous: 'normal' });
    const arkFile = path.join(dir, 'live-file.ark');
    const arkWritable = path.join(dir, 'live-writable.ark');
    const sink = await WalnutFile.open(arkFile, { create: true, truncate: true });
    const writable = fs.createWriteStream(arkWritable);
    const toFile = db.store.exportTo(sink, { follow: true, pollMs: 5 });
    const toWritable = db.store.exportTo(writable, { follow: true, pollMs: 5 });

    // python3/sqlite3 inserts rows (w = 1) with its autocheckpoint off, beside 8 walnut committers
    // (w = 100..107), until the WAL is past FRAMES (then stopped; it was a fixed 4 s) and it has
    // made at least 20 commits (a loaded machine gave it none in 4 s)
    const writer = startPython(path.join(HELPERS, 'sqlite-writer.py'), [src, '120', '1', '0', '0', '20']);
    const python = writer.output;
    let pythonDone = false;
    void python.then(() => (pythonDone = true), () => (pythonDone = true));
    const pythonRows = async (): Promise<number> => ((await db.get('SELECT count(*) AS n FROM t WHERE w = 1')) as { n: number }).n;
    // (stopped only once it has committed: its SIGTERM handler is set by then)
    const stopWriter = until(() => pythonDone || walFrames(src) >= FRAMES).then(async () => {
      while (!pythonDone && (await pythonRows()) === 0) await new Promise((r) => setTimeout(r, 10));
      writer.stop();
    });
    let n = 0;
    const committer = async (w: number): Promise<void> => {
      while (!pythonDone || walFrames(src) < FRAMES) {
        // past FRAMES, until python3 made its commits, the committers pause between commits: a
        // sqlite3 writer gets WRITE only in walnut's pauses (README: foreign writers beside busy
        // walnut/sql callers), and 8 committers back to back kept it out for 1.4-290 s (the file
        // took that long; the WAL grew on meanwhile)
        if (walFrames(src) >= FRAMES) await new Promise((resolve) => setTimeout(resolve, 5));
        const blob = Buffer.alloc(3000 + ((n++ * 131) % 9000), w + n);
        for (;;) {
          try {
            await db.run('INSERT INTO t(w, v) VALUES (?, ?)', [w, blob]);
            break;
          } catch (e) {
            if ((e as { code?: string }).code !== 'WALNUT_CONFLICT' && (e as { code?: string }).code !== 'WALNUT_BUSY') throw e;
          }
        }
      }
    };
    await Promise.all([python, stopWriter, ...Array.from({ length: 8 }, (_, k) => committer(100 + k))]);
    const pythonCommits = Number((await python).trim());
    const frames = walFrames(src);
    expect(frames).toBeGreaterThanOrEqual(FRAMES);
    expect(pythonCommits).toBeGreaterThan(0);

    const [fileStats, writableStats] = await Promise.all([toFile.stop(), toWritable.stop()]);
    await sink.close();
    await new Promise<void>((resolve, reject) => writable.end((e?: Error | null) => (e ? reject(e) : resolve())));
    const expected = rows(src);
    await db.close();
    expect(expected.filter((r) => r.w === 1)).toHaveLength(pythonCommits);
    expect(fileStats.generations).toBe(1); // one generation, past 4 segments
    expect(writableStats.commits).toBe(fileStats.commits);

    for (const [ark, stats] of [[arkFile, fileStats], [arkWritable, writableStats]] as const) {
      const restored = `${ark}.db`;
      const r = await restore(fs.createReadStream(ark), restored);
      expect(r).toMatchObject({ stoppedBy: null });
      expect(r.commits).toBe(stats.commits);
      expect(firstDifference(rows(restored), expected), ark).toBeNull();
      const check = new Database(restored, { readonly: true });
      expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
      check.close();
    }
  }, 300_000);
});

describe('follow export, native records: the sink failing under it', () => {
  const page = (v: number): Buffer => Buffer.alloc(PAGE, v);

  it('the sink file closed mid-follow: WALNUT_IO reason SinkClosed (not WALNUT_CLOSED: the store is open), the store goes on', async () => {
    const store = await open(path.join(dir, 'sink-closed.db'));
    await store.commit([{ pgno: 2, data: page(1) }]);
    const sink = await WalnutFile.open(path.join(dir, 'sink-closed.ark'), { create: true, truncate: true });
    const handle = store.exportTo(sink, { follow: true, pollMs: 1 });
    await store.commit([{ pgno: 2, data: page(2) }]);
    await until(() => fs.statSync(path.join(dir, 'sink-closed.ark')).size > 2 * PAGE, WAIT_MS); // following
    await sink.close();
    for (let i = 0; i < 3; i++) await store.commit([{ pgno: 3, data: page(i) }]);
    handle.poke();
    await expectRejectsWalnut(handle.done, 'WALNUT_IO', { reason: 'SinkClosed' });
    await store.commit([{ pgno: 2, data: page(9) }]);
    expect(Buffer.from(await readPage(store, 2))).toEqual(page(9));
    await store.close();
  });

  it('a sink file that refuses writes (opened read-only: every pwrite EBADF): WALNUT_IO, the store goes on', async () => {
    const store = await open(path.join(dir, 'sink-ebadf.db'));
    await store.commit([{ pgno: 2, data: page(1) }]);
    const arkPath = path.join(dir, 'sink-ebadf.ark');
    fs.writeFileSync(arkPath, '');
    const sink = await WalnutFile.open(arkPath, { readOnly: true });
    const handle = store.exportTo(sink, { follow: true, pollMs: 1 });
    const e = await expectRejectsWalnut(handle.done, 'WALNUT_IO');
    expect(e.message).toMatch(/Bad file descriptor/);
    await sink.close();
    await store.commit([{ pgno: 2, data: page(9) }]);
    expect(Buffer.from(await readPage(store, 2))).toEqual(page(9));
    await store.close();
  });
});

async function readPage(store: Awaited<ReturnType<typeof open>>, pgno: number): Promise<Buffer> {
  const snap = await store.snapshot();
  try {
    return await snap.read(pgno);
  } finally {
    snap.release();
  }
}
