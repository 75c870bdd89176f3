// `walnut export -o FIFO` whose reader pauses and resumes: the FIFO is written through a
// non-blocking descriptor, and a full pipe (EAGAIN) is tried again on a timer (openFifoOutput).
// The other FIFO tests cover a reader that comes late (a stream smaller than the pipe) and one
// that never reads again (the write given up); none had the pipe fill and then drain, where a
// write is partly taken, refused (EAGAIN), then taken later. A python3 reader reads 4 KiB at a
// time with pauses (and one long one), so the pipe is full again and again; what it read must be
// the stream an export to a regular file of the same idle database writes, byte for byte but for
// the first record (it holds the export's wall-clock time, as each commit's record does), and
// must restore to the same rows.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
/** A hang detector only: the run below ends in about 3 s. */
const HANG_MS = 20_000;

/** Reads argv[1] 4 KiB at a time into argv[2], pausing 20 ms after each of the first 64 reads and 300 ms after the 32nd. */
const PAUSING_READER = `
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
with open(sys.argv[2], 'wb') as out:
    n = 0
    while True:
        b = os.read(fd, 4096)
        if not b: break
        out.write(b); n += 1
        if n <= 64: time.sleep(0.3 if n == 32 else 0.02)
`;

/** t's rows as text, id:hex(v) (vitest compares 800 Buffers of 3000 bytes in seconds, these strings at once). */
const rowsOf = (db: Database.Database) => (db.prepare('SELECT id, hex(v) AS v FROM t ORDER BY id').all() as { id: number; v: string }[]).map((r) => `${r.id}:${r.v}`);

/** The stream after its first record (magic, u64 big-endian length, payload): what two exports of one idle database share. */
function afterFirstRecord(stream: Buffer): Buffer {
  return stream.subarray(16 + Number(stream.readBigUInt64BE(8)));
}

describe('walnut export -o FIFO whose reader pauses and resumes', () => {
  it('the reader gets the whole stream, as written to a regular file, and it restores to the same rows', async () => {
    const db = path.join(dir, 'app.db');
    const source = new Database(db);
    source.pragma('journal_mode = WAL');
    source.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
    const insert = source.prepare('INSERT INTO t(v) VALUES (randomblob(3000))');
    const commit100 = source.transaction(() => {
      for (let i = 0; i < 100; i++) insert.run();
    });
    for (let commit = 0; commit < 8; commit++) commit100();
    const rows = rowsOf(source);
    source.close(); // idle, its WAL checkpointed: two exports differ only in their first record's time (each commit's record holds one too)
    const reference = path.join(dir, 'reference.ark');
    const toFile = await spawnOutput(process.execPath, [bin, 'export', db, '-o', reference], { timeout: HANG_MS });
    expect(toFile.status, toFile.stderr).toBe(0);
    const expected = fs.readFileSync(reference);
    expect(expected.length).toBeGreaterThan(1 << 20); // many times the pipe's 64 KiB

    const fifo = path.join(dir, 'pipe');
    expect((await spawnOutput('mkfifo', [fifo])).status).toBe(0);
    const read = path.join(dir, 'read.ark');
    const [toFifo, reader] = await Promise.all([
      spawnOutput(process.execPath, [bin, 'export', db, '-o', fifo], { timeout: HANG_MS }),
      spawnOutput('python3', ['-c', PAUSING_READER, fifo, read], { timeout: HANG_MS }),
    ]);
    expect(reader.status, reader.stderr).toBe(0);
    expect(toFifo.status, toFifo.stderr).toBe(0);
    expect(toFifo.stderr).toBe(`walnut export: ${expected.length} bytes\n`);
    const got = fs.readFileSync(read);
    expect(got.length).toBe(expected.length);
    expect(afterFirstRecord(got).equals(afterFirstRecord(expected))).toBe(true);

    const restored = path.join(dir, 'restored.db');
    const restoring = await spawnOutput(process.execPath, [bin, 'restore', read, restored], { timeout: HANG_MS });
    expect(restoring.status, restoring.stderr).toBe(0);
    const back = new Database(restored, { readonly: true });
    expect(rowsOf(back)).toEqual(rows);
    back.close();
  }, 2 * HANG_MS);
});
