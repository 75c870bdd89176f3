// Point-in-time restore at scale: `walnut export --follow` (another process) streams the commits
// of a python3 sqlite3 writer (another process) that grows the WAL past 16,000 frames (512-byte
// pages: 4+ wal-index segments, no checkpoint: one generation) in 3,000 transactions of 5 rows
// (w = the transaction's number). Restores at commit points spread over the stream (by sequence)
// and at some of their times (by Date) each give exactly that commit's state: whole transactions
// 0..m-1 only (5 rows each, nothing of a later one), m one more per commit sequence, and the
// time's restore the last commit the exporter had seen by then; SQLite's integrity_check ok on
// each. The whole stream restores to the source.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { WalStreamReader } from '../../lib/export/framing';
import { decodeRecord } from '../../lib/export/records';
import { restore } from '../../lib/export/restore';
import { commitsInStreamFile } from '../helpers/export-stream';
import { Database } from '../helpers/sqlite';
import { walDatabase } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const TRANSACTIONS = 3000;

const WRITER = [
  'import sqlite3, sys',
  "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)",
  "c.execute('PRAGMA wal_autocheckpoint=0'); c.execute('PRAGMA synchronous=OFF')",
  `for i in range(${TRANSACTIONS}):`,
  "    c.execute('BEGIN')",
  "    for j in range(5): c.execute('INSERT INTO t(w, v) VALUES (?, randomblob(300))', (i,))",
  "    c.execute('COMMIT')",
  "print((len(open(sys.argv[1] + '-wal', 'rb').read()) - 32) // (24 + 512))",
  'c.close()',
].join('\n');

/** Commit points of the stream: each commit's sequence and the time the exporter saw it. */
function commitPoints(ark: string): { seq: number; timeMs: number }[] {
  const points: { seq: number; timeMs: number }[] = [];
  for (const payload of WalStreamReader.fromBuffer(fs.readFileSync(ark))) {
    const r = decodeRecord(payload);
    if (r.kind === 'commitMeta') points.push({ seq: Number(r.seq), timeMs: Number(r.timeMs) });
  }
  return points;
}

/** The restored state: how many whole transactions (w = 0..m-1, 5 rows each) and whether that is all it holds. */
function transactionsIn(file: string): { m: number; prefix: boolean; integrity: unknown } {
  const db = new Database(file, { readonly: true });
  try {
    const groups = db.prepare('SELECT w, count(*) AS n FROM t GROUP BY w ORDER BY w').all() as { w: number; n: number }[];
    return { m: groups.length, prefix: groups.every((g, i) => g.w === i && g.n === 5), integrity: db.pragma('integrity_check', { simple: true }) };
  } finally {
    db.close();
  }
}

describe('point-in-time restore of a follow export of a WAL python3 grew past 16,000 frames', () => {
  it('restores at commits spread over the stream, by sequence and by time, give exactly that commit; the whole stream the source', async () => {
    const src = walDatabase(path.join(dir, 'src.db'), 512, 'CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
    const ark = path.join(dir, 'src.ark');
    const exporter = spawn(process.execPath, [bin, 'export', src, '--follow', '-o', ark], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    exporter.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => exporter.once('exit', resolve));
    try {
      await until(() => fs.existsSync(ark) && fs.statSync(ark).size > 0, WAIT_MS, () => stderr); // the base image is out
      const frames = await new Promise<number>((resolve, reject) => {
        const python = spawn('python3', ['-c', WRITER, src], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        python.stdout.on('data', (d) => (out += d));
        python.once('close', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`python3 exited ${code}`))));
      });
      expect(frames).toBeGreaterThan(16_000);
      await until(() => commitsInStreamFile(ark) >= TRANSACTIONS, WAIT_MS, () => ({ commits: commitsInStreamFile(ark), stderr }));
    } finally {
      exporter.kill('SIGINT');
    }
    expect(await exited, stderr).toBe(0);

    const points = commitPoints(ark);
    expect(points).toHaveLength(TRANSACTIONS);
    const chosen = [0, 1, 1500, TRANSACTIONS - 2, TRANSACTIONS - 1].map((i) => points[i]!);
    let offset: number | null = null;
    for (const [k, p] of chosen.entries()) {
      const out = path.join(dir, `seq-${k}.db`);
      expect(await restore(fs.createReadStream(ark), out, { until: p.seq })).toMatchObject({ lastCommitSeq: p.seq });
      const got = transactionsIn(out);
      expect(got, `at commit ${p.seq}`).toMatchObject({ prefix: true, integrity: 'ok' });
      offset ??= got.m - p.seq;
      expect(got.m - p.seq, `at commit ${p.seq}: one transaction per commit`).toBe(offset);
    }
    expect(transactionsIn(path.join(dir, `seq-${chosen.length - 1}.db`)).m).toBe(TRANSACTIONS);
    // by time: the last commit the exporter had seen by then (several commits can share a millisecond)
    for (const i of [2000]) {
      const when = points[i]!.timeMs;
      const last = points.filter((p) => p.timeMs <= when).at(-1)!;
      const out = path.join(dir, `time-${i}.db`);
      expect(await restore(fs.createReadStream(ark), out, { until: new Date(when) })).toMatchObject({ lastCommitSeq: last.seq });
      expect(transactionsIn(out)).toMatchObject({ m: last.seq + offset!, prefix: true, integrity: 'ok' });
    }
  });
});
