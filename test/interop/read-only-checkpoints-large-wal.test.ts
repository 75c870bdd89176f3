// Read-only walnut beside a python3 sqlite3 writer of a 16,000+-frame WAL (4+ wal-index
// segments; helpers/sqlite-counter-checksum-writer.py: each transaction sets a counter row, a
// checksum row and one row of g to the same K) and a python3 checkpointer running PASSIVE, FULL,
// RESTART and TRUNCATE in turn (sqlite3 restarts and truncates the WAL under walnut). Walnut reads
// through three read-only connections at once: walnut/sql readOnly (every read one whole
// committed state, never older than the one before), a store opened readOnly following the WAL
// into an export (exportTo, follow), and a read-only follow export of its own connection
// (createExportStream readOnly, what `walnut export --read-only --follow` runs). No walnut call
// fails, each stream restores to the writer's last state (K, checksum, K rows of g; integrity_check
// ok), no checkpoint is busy, and every FULL, RESTART and TRUNCATE completes.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { describe, expect, it } from 'vitest';

import { restore } from '../../lib/export/restore';
import { createExportStream } from '../../lib/export/stream';
import { open } from '../../lib/open';
import { openDatabase } from '../../lib/sql';
import { HELPERS, spawnOutput } from '../helpers/children';
import { readLines } from '../helpers/child-lines';
import { segmentEnd, shmMxFrame } from '../helpers/large-wal';
import { checkpoints, expectCompleted, PATIENT_MS } from '../helpers/sqlite-checkpointer';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir('walnut-ro-ckpt-large-');
const checksum = (k: number): number => Number((BigInt(k) * 2654435761n) % 4294967296n);
const STATE = 'SELECT (SELECT n FROM t WHERE id = 1) AS k, (SELECT n FROM t WHERE id = 2) AS chk, (SELECT count(*) FROM g) AS rows';

describe('read-only walnut beside a sqlite3 writer of a 16,000+-frame WAL and sqlite3 checkpoints of all four modes', () => {
  it('whole states, never going back; both follow exports restore to the last commit; FULL, RESTART and TRUNCATE complete', async () => {
    const file = path.join(dir, 'ro-ckpt.db');
    const stop = `${file}.stop`;
    const writer = spawn('python3', [path.join(HELPERS, 'sqlite-counter-checksum-writer.py'), file, String(segmentEnd(3) + 100), stop], { stdio: ['ignore', 'pipe', 'pipe'] });
    let last = -1;
    let markFilled!: () => void;
    const filled = new Promise<void>((resolve) => (markFilled = resolve));
    const ended = readLines(writer, (line) => {
      if (line === 'filled') markFilled();
      if (line.startsWith('done ')) last = Number(line.slice(5));
    });
    const arkA = path.join(dir, 'store-follow.ark');
    const arkB = path.join(dir, 'stream-follow.ark');
    try {
      await Promise.race([filled, ended.then((r) => Promise.reject(new Error(`the writer ended before filling: ${r.code ?? r.signal} ${r.stderr}`)))]);
      expect(shmMxFrame(file)).toBeGreaterThan(segmentEnd(3));
      const db = await openDatabase(file, { readOnly: true, readConnections: 1 });
      const store = await open(file, { readOnly: true });
      const outA = fs.createWriteStream(arkA);
      const outB = fs.createWriteStream(arkB);
      const closedA = new Promise<void>((resolve) => outA.on('close', () => resolve()));
      const closedB = new Promise<void>((resolve) => outB.on('close', () => resolve()));
      const follow = store.exportTo(outA, { follow: true, pollMs: 5 });
      const stream = createExportStream(file, { follow: true, pollMs: 5, readOnly: true });
      stream.pipe(outB);
      const seen: number[] = [];
      try {
        const ckpt = checkpoints(file, ['PASSIVE', 'FULL', 'RESTART', 'TRUNCATE'], 3, 100, PATIENT_MS);
        let done = false;
        const run = ckpt.run.finally(() => (done = true));
        run.catch(() => undefined);
        while (!done) {
          const s = (await db.get(STATE)) as { k: number; chk: number; rows: number };
          expect(s).toEqual({ k: s.k, chk: checksum(s.k), rows: s.k });
          expect(s.k, 'a read went back').toBeGreaterThanOrEqual(seen.at(-1) ?? 0);
          seen.push(s.k);
          const snap = await store.snapshot();
          snap.release();
        }
        const results = await run;
        console.log(`${seen.length} reads (K ${seen[0]}..${seen.at(-1)}); checkpoints ${results.results.map((r) => `${r.mode[0]}:${r.busy}/${r.log}/${r.checkpointed}/${r.ms}ms`).join(' ')}`);
        // none busy; FULL, RESTART and TRUNCATE complete (they wait for readers); a PASSIVE copies
        // only what no reader's snapshot still needs from the file (nothing while the exports
        // read their base images, less than all while reads hold older snapshots), as beside
        // sqlite3's own readers
        for (const r of results.results) expect(r, JSON.stringify(r)).toMatchObject({ busy: 0 });
        expectCompleted({ ...results, results: results.results.filter((r) => r.mode !== 'PASSIVE') });
        expect(new Set(seen).size, 'the reads saw the writer go on').toBeGreaterThan(5);
      } finally {
        fs.writeFileSync(stop, '');
        await ended;
        await new Promise((resolve) => setTimeout(resolve, 100)); // (the follows' passes over the last commits)
        await follow.stop();
        outA.end();
        await stream.stop();
        await Promise.all([closedA, closedB]);
        await store.close();
        await db.close();
      }
    } finally {
      fs.writeFileSync(stop, '');
      await ended;
    }
    expect(last).toBeGreaterThan(0);
    const want = `${last}|${checksum(last)}|${last}\nok`;
    expect((await spawnOutput('sqlite3', [file, `${STATE}; PRAGMA integrity_check`])).stdout.trim()).toBe(want);
    for (const ark of [arkA, arkB]) {
      const restored = path.join(dir, `${path.basename(ark)}.db`);
      await restore(fs.createReadStream(ark), restored);
      expect((await spawnOutput('sqlite3', [restored, `${STATE}; PRAGMA integrity_check`])).stdout.trim(), ark).toBe(want);
    }
  });
});
