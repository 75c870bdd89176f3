// Telemetry checked against a known workload on a database SQLite built: the walnut:commit
// events add up to the metrics (commits, frames, bytes: telemetry/events.ts documents
// { commits, frames, bytes, ioMicros, lastFrame }, and `bytes` was missing, so a subscriber
// summing it got NaN), every counter only goes up across more commits and checkpoints, and the
// Prometheus text is valid exposition format: every sample's family has one HELP and one TYPE
// line before it, names are legal, values are numbers (no NaN, undefined, null), no family
// appears twice.
import { execFileSync } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PAGE = 4096;

/** Parses Prometheus text exposition (0.0.4), failing on anything malformed. */
function parsePrometheus(text: string): Map<string, { type: string; samples: Map<string, number> }> {
  const families = new Map<string, { type: string; help: boolean; samples: Map<string, number> }>();
  expect(text.endsWith('\n')).toBe(true);
  const familyOf = (name: string): string | undefined => {
    if (families.has(name)) return name;
    for (const suffix of ['_sum', '_count']) if (name.endsWith(suffix) && families.get(name.slice(0, -suffix.length))?.type === 'summary') return name.slice(0, -suffix.length);
    return undefined;
  };
  let pendingHelp: string | null = null;
  for (const line of text.slice(0, -1).split('\n')) {
    let m: RegExpMatchArray | null;
    if ((m = line.match(/^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/))) {
      expect(families.has(m[1]!), `family ${m[1]} twice`).toBe(false);
      pendingHelp = m[1]!;
    } else if ((m = line.match(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|summary|histogram|untyped)$/))) {
      expect(m[1], `TYPE ${m[1]} right after its HELP`).toBe(pendingHelp);
      families.set(m[1]!, { type: m[2]!, help: true, samples: new Map() });
      pendingHelp = null;
    } else if ((m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*",?)*\})? (\S+)$/))) {
      const family = familyOf(m[1]!);
      expect(family, `sample ${line} has no HELP/TYPE before it`).toBeDefined();
      const value = Number(m[3]);
      expect(Number.isFinite(value), `sample ${line}`).toBe(true);
      const key = m[1]! + (m[2] ?? '');
      expect(families.get(family!)!.samples.has(key), `sample ${key} twice`).toBe(false);
      families.get(family!)!.samples.set(key, value);
    } else {
      throw new Error(`not exposition format: ${JSON.stringify(line)}`);
    }
  }
  return families;
}

function counters(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [, f] of parsePrometheus(text)) if (f.type === 'counter' || f.type === 'summary') for (const [k, v] of f.samples) if (f.type === 'counter' || k.endsWith('_count') || k.endsWith('_sum')) out.set(k, v);
  return out;
}

describe('telemetry after a known workload', () => {
  it('commit events add up to the metrics, counters only go up, the Prometheus text is valid', async () => {
    const db = path.join(dir, 'known.db');
    const s = new Database(db);
    s.pragma(`page_size = ${PAGE}`);
    s.pragma('journal_mode = WAL');
    s.exec('CREATE TABLE t(x); INSERT INTO t VALUES (1)');
    s.close();
    const page1 = Buffer.from(fs.readFileSync(db).subarray(0, PAGE));

    const events: Record<string, unknown>[] = [];
    const onCommit = (m: unknown) => events.push(m as Record<string, unknown>);
    diagnostics.subscribe('walnut:commit', onCommit);
    try {
      const store = await open(db, { fec: { repairSymbols: 2, codec: 'rs' }, autoCheckpoint: 100 });
      // 64 concurrent commits of 3 pages each, then 20 lone ones of 1 page
      await Promise.all(Array.from({ length: 64 }, (_, i) => store.commit([{ pgno: 1, data: page1 }, { pgno: 3, data: Buffer.alloc(PAGE, i) }, { pgno: 4 + (i % 8), data: Buffer.alloc(PAGE, i) }])));
      for (let i = 0; i < 20; i++) await store.commit([{ pgno: 5, data: Buffer.alloc(PAGE, i) }]);
      const m = store.metrics();
      expect(m.commits).toBe(84);
      expect(m.frames).toBe(64 * 3 + 20);
      expect(m.bytes).toBe((64 * 3 + 20) * PAGE);
      expect(m.fsyncs).toBe(m.batches); // synchronous 'full': one fdatasync per batch
      expect(m.batchSize.count).toBe(m.batches);
      expect(m.latency.commit.count).toBe(84);
      expect(events).toHaveLength(m.batches);
      for (const e of events) expect(Object.keys(e).sort()).toEqual(['bytes', 'commits', 'frames', 'ioMicros', 'lastFrame']);
      const sum = (k: string) => events.reduce((n, e) => n + (e[k] as number), 0);
      expect(sum('commits')).toBe(m.commits);
      expect(sum('frames')).toBe(m.frames);
      expect(sum('bytes')).toBe(m.bytes);

      const first = store.metrics({ format: 'prometheus' });
      const before = counters(first);
      expect(before.get('walnut_commits_total')).toBe(84);
      expect(before.get('walnut_frames_total')).toBe(212);
      expect(before.get('walnut_bytes_total')).toBe(212 * PAGE);
      expect(before.get('walnut_fec_frames_total')).toBeGreaterThan(0);

      // more work: commits, every checkpoint mode; nothing counted goes down
      await Promise.all(Array.from({ length: 16 }, (_, i) => store.commit([{ pgno: 6, data: Buffer.alloc(PAGE, i) }])));
      for (const mode of ['passive', 'full', 'restart', 'truncate'] as const) await store.checkpoint(mode);
      await store.commit([{ pgno: 7, data: Buffer.alloc(PAGE, 1) }]);
      const after = counters(store.metrics({ format: 'prometheus' }));
      for (const [k, v] of before) expect([k, after.get(k)! >= v]).toEqual([k, true]);
      expect(after.get('walnut_commits_total')).toBe(84 + 17);
      expect(after.get('walnut_checkpoints_total')! - before.get('walnut_checkpoints_total')!).toBeGreaterThanOrEqual(4);
      await store.close();
    } finally {
      diagnostics.unsubscribe('walnut:commit', onCommit);
    }
  });

  it("store.recentEvents() keeps the store's own recovery (README: the last 256 non-commit events)", async () => {
    // a WAL of 5 commits (6 frames: CREATE TABLE writes pages 1 and 2) left by a python3 sqlite3 process that exited without closing (no
    // checkpoint), its -shm removed: the store's open rebuilds the index from the WAL
    const db = path.join(dir, 'recovered.db');
    execFileSync('python3', ['-c', `
import sqlite3, os
c = sqlite3.connect(${JSON.stringify(db)}, isolation_level=None)
c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0')
c.execute('CREATE TABLE t(x)')
for i in range(4): c.execute('INSERT INTO t VALUES (?)', (i,))
os._exit(0)`]);
    fs.rmSync(`${db}-shm`);
    const seen: unknown[] = [];
    const onRecovery = (m: unknown) => seen.push(m);
    diagnostics.subscribe('walnut:recovery', onRecovery);
    try {
      const store = await open(db);
      expect(seen).toEqual([expect.objectContaining({ path: fs.realpathSync(db), frames: 6, commits: 5 })]);
      const recent = store.recentEvents();
      expect(recent.map((e) => e.name)).toEqual(['recovery']);
      expect(recent[0]!.data).toEqual(seen[0]);
      await store.close();
    } finally {
      diagnostics.unsubscribe('walnut:recovery', onRecovery);
    }
  });
});
