// walnut/sql read-only (openDatabase readOnly: true) on a WAL of 16,000+ frames (4+ wal-index
// segments) that a python3 sqlite3 process wrote and keeps writing while walnut reads
// (helpers/sqlite-counter-checksum-writer.py: each of its transactions sets a counter row, a
// checksum row and one row of a table to the same K). Every read, on a read connection and
// inside a read-only transaction() on the writer connection, sees one whole committed state
// (the counter, the checksum and the row count agree), never an older one than the read before,
// and the reads see the writer's commits go on. Walnut writes nothing: the database file keeps
// every byte, and the -wal's bytes as walnut found them (its header and every frame committed
// then) are unchanged: only the writer grew it (no checkpoint, no restart). Hashed by sha256sum
// in a child process: this process reads neither file through a descriptor of its own.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { HELPERS } from '../helpers/children';
import { readLines } from '../helpers/child-lines';
import { segmentEnd, shmMxFrame } from '../helpers/large-wal';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PAGE = 4096;
const FRAME = 24 + PAGE;
/** How long walnut reads beside the writer. */
const READ_MS = 1500;

const checksum = (k: number): number => Number((BigInt(k) * 2654435761n) % 4294967296n);
/** sha256 of the first `bytes` bytes of `file` (all of it without `bytes`), read by a child process. */
const sha256 = (file: string, bytes?: number): string =>
  execFileSync('sh', ['-c', bytes === undefined ? 'sha256sum < "$1"' : 'head -c "$2" "$1" | sha256sum', 'sh', file, String(bytes ?? '')], { encoding: 'utf8' }).split(' ')[0]!;

const STATE = 'SELECT (SELECT n FROM t WHERE id = 1) AS k, (SELECT n FROM t WHERE id = 2) AS chk, (SELECT count(*) FROM g) AS rows';

describe('walnut/sql readOnly beside a sqlite3 writer of a 16,000+-frame WAL', () => {
  it('every read sees one whole committed state, never going back; the file and the -wal walnut found keep every byte', async () => {
    const file = path.join(dir, 'ro-large.db');
    const stop = `${file}.stop`;
    const writer = spawn('python3', [path.join(HELPERS, 'sqlite-counter-checksum-writer.py'), file, String(segmentEnd(3) + 100), stop], { stdio: ['ignore', 'pipe', 'pipe'] });
    let last = -1;
    let markFilled!: () => void;
    const filled = new Promise<void>((resolve) => (markFilled = resolve));
    const ended = readLines(writer, (line) => {
      if (line === 'filled') markFilled();
      if (line.startsWith('done ')) last = Number(line.slice(5));
    });
    try {
      await Promise.race([filled, ended.then((r) => Promise.reject(new Error(`the writer ended before filling: ${r.code ?? r.signal} ${r.stderr}`)))]);
      // what walnut finds: the database file, and the -wal's header and committed frames
      const found = shmMxFrame(file);
      expect(found).toBeGreaterThan(segmentEnd(3));
      const walFound = 32 + found * FRAME;
      const before = { db: sha256(file), wal: sha256(`${file}-wal`, walFound) };

      const db = await openDatabase(file, { readOnly: true, readConnections: 2 });
      const seen: number[] = [];
      try {
        expect(db.store.metrics().walFrames).toBeGreaterThanOrEqual(found);
        const t0 = performance.now();
        for (let i = 0; performance.now() - t0 < READ_MS; i++) {
          // a read connection's snapshot, or the writer connection's read-only transaction
          const s = (i % 3 === 2 ? await db.transaction((tx) => tx.get(STATE)) : await db.get(STATE)) as { k: number; chk: number; rows: number };
          expect(s, `read ${i}`).toEqual({ k: s.k, chk: checksum(s.k), rows: s.k });
          expect(s.k, `read ${i} went back`).toBeGreaterThanOrEqual(seen.at(-1) ?? 0);
          seen.push(s.k);
        }
        // a write through it, SQL or the store's, is refused and writes nothing
        await expect(db.run('UPDATE t SET n = n + 1 WHERE id = 1')).rejects.toMatchObject({ code: 'WALNUT_READONLY' });
        await expect(db.store.checkpoint('passive')).rejects.toMatchObject({ code: 'WALNUT_READONLY' });
      } finally {
        await db.close();
      }
      const distinct = new Set(seen).size;
      console.log(`${seen.length} reads, ${distinct} committed states seen (K ${seen[0]}..${seen.at(-1)}), WAL ${found} frames when opened, ${shmMxFrame(file)} after`);
      expect(distinct, 'the reads saw the writer go on').toBeGreaterThan(10);
      expect(shmMxFrame(file)).toBeGreaterThan(found); // the writer went on appending
      expect({ db: sha256(file), wal: sha256(`${file}-wal`, walFound) }).toEqual(before);
      expect(fs.statSync(`${file}-wal`).size).toBeGreaterThanOrEqual(walFound);
    } finally {
      fs.writeFileSync(stop, '');
      await ended;
    }
    expect(last).toBeGreaterThan(0);
    const end = execFileSync('sqlite3', [file, `${STATE}; PRAGMA integrity_check`], { encoding: 'utf8' }).trim();
    expect(end).toBe(`${last}|${checksum(last)}|${last}\nok`);
  }, 60_000);
});
