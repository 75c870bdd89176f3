// restoreFromNats / `walnut restore --nats` over a session's log with a message gone from its
// middle (deleted with jsm.streams.deleteMessage here; a cluster's node that lost it, retention
// cutting the log right after the newest base image). The restore stopped at the gap without a
// word: exit 0, stoppedBy ChecksumChainBroken (the commits after the gap read as a broken chain),
// an earlier state than the stream held, nothing saying commits were skipped. Now it stops at the
// commit before the gap with stoppedBy 'LogGap' and `logGap` naming the commits missing and the
// messages around them; `walnut restore --nats` prints it and exits 3. An `until` at or before
// the commit before the gap is unaffected ('until', exit 0). A gap before a later base image at or
// before `until` is never read: that base is the one restored (the newest one that fits).
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { WalStreamReader } from '../../lib/export/framing';
import { decodeRecord } from '../../lib/export/records';
import { connectNats, HEADER } from '../../lib/replicate/nats';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { openDatabase } from '../../lib/sql';
import { spawnOutput } from '../helpers/children';
import { NATS_SKIP, stopNats, type NatsNode } from '../helpers/nats';
import { replicating } from '../helpers/replicating';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));
let n = 0;

/** Rows of t (their ids) as SQLite reads them, and its integrity_check. */
function sqliteView(file: string): { ids: number[]; integrity: string } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const ids = (db.prepare('SELECT id FROM t ORDER BY id').all() as { id: number }[]).map((r) => r.id);
    return { ids, integrity: String(db.pragma('integrity_check', { simple: true })) };
  } finally {
    db.close();
  }
}

const upTo = (k: number): number[] => Array.from({ length: k }, (_, i) => i + 1);

/**
 * A primary (table t) replicating to `stream`: `rows` inserts, commit i the row id i, each
 * published before the next is made (a log message each; `big` rows are larger than a message:
 * several parts); base images every 10 commits. Returns the server and the base images' commits.
 */
async function primary(stream: string, rows: number, big: ReadonlySet<number> = new Set()): Promise<{ url: string; bases: number[] }> {
  const { server, store, r, file } = await replicating(dir, started, stream, { baseEveryCommits: 10, maxMessageBytes: 64 << 10 });
  const bases: number[] = [];
  r.on('base', (e: { seq: number }) => bases.push(e.seq));
  const sql = await openDatabase(file);
  try {
    for (let i = 1; i <= rows; i++) {
      await sql.run('INSERT INTO t(id, w, v) VALUES (?, ?, randomblob(?))', [i, i, big.has(i) ? 300_000 : 3000]);
      await until(() => r.metrics().publishedSeq >= i, 10_000, () => r.metrics());
    }
  } finally {
    await sql.close();
    await r.stop();
    await store.close();
  }
  expect(r.metrics().publishedSeq).toBe(rows);
  return { url: server.url, bases: [...new Set(bases)].sort((a, b) => a - b) };
}

/** The stream's log messages: stream sequence, Nats-Msg-Id and the commits whose COMMIT_META each holds. */
async function logMessages(url: string, stream: string): Promise<{ seq: number; id: string; commits: number[] }[]> {
  const link = await connectNats([url], () => true, 'test');
  try {
    const info = await link.jsm.streams.info(stream);
    const out: { seq: number; id: string; commits: number[] }[] = [];
    for (let q = info.state.first_seq; q <= info.state.last_seq; q++) {
      const m = await link.jsm.streams.getMessage(stream, { seq: q }).catch(() => null);
      if (m === null || m.subject !== `walnut.${stream}.log`) continue;
      const commits: number[] = [];
      for (const p of WalStreamReader.fromBuffer(m.data)) {
        const rec = decodeRecord(p);
        if (rec.kind === 'commitMeta') commits.push(Number(rec.seq));
      }
      out.push({ seq: q, id: m.header.get('Nats-Msg-Id'), commits });
    }
    return out;
  } finally {
    await link.nc.close();
  }
}

async function deleteMessage(url: string, stream: string, seq: number): Promise<void> {
  const link = await connectNats([url], () => true, 'test');
  try {
    expect(await link.jsm.streams.deleteMessage(stream, seq)).toBe(true);
  } finally {
    await link.nc.close();
  }
}

/** Deletes the log message that holds commit `k` alone; returns its stream sequence and its neighbours'. */
async function deleteCommit(url: string, stream: string, k: number): Promise<{ before: number; gone: number; after: number }> {
  const log = await logMessages(url, stream);
  const at = log.findIndex((m) => m.commits.includes(k));
  expect(log[at]!.commits).toEqual([k]); // (one commit a message: the primary published each before the next)
  await deleteMessage(url, stream, log[at]!.seq);
  return { before: log[at - 1]!.seq, gone: log[at]!.seq, after: log[at + 1]!.seq };
}

async function walnutRestore(url: string, stream: string, db: string, ...more: string[]): Promise<{ status: number | null; line: Record<string, unknown> }> {
  const r = await spawnOutput(process.execPath, [bin, 'restore', '--nats', url, '--stream', stream, db, '--json', ...more]);
  expect(r.stderr).toBe('');
  return { status: r.status, line: JSON.parse(r.stdout) as Record<string, unknown> };
}

const db = (): string => path.join(dir, `restored${n++}.db`);
const ROWS = 27; // (base images at about 10 and 20: one may come a commit later on a loaded machine)

describe.skipIf(NATS_SKIP !== null)('restore from NATS across a gap in the log', () => {
  it('no base image past the gap: stops before it with stoppedBy LogGap naming the commits missing, exit 3; an until before the gap is unaffected', async () => {
    const { url, bases } = await primary('after', ROWS);
    const newest = bases[bases.length - 1]!;
    expect(newest).toBeLessThanOrEqual(ROWS - 4);
    const k = newest + 2; // a commit after the newest base image, with commits after it
    const whole = await restoreFromNats(db(), { servers: url, stream: 'after' }); // (before the gap: all of it)
    expect([whole.lastCommitSeq, whole.stoppedBy, whole.logGap]).toEqual([ROWS, null, null]);
    const { before, after } = await deleteCommit(url, 'after', k);
    const gap = { fromSeq: k, toSeq: k, afterMessage: before, nextMessage: after };

    for (const asked of [undefined, k + 1, ROWS, new Date(Date.now() + 60_000)]) {
      const file = db();
      const r = await restoreFromNats(file, { servers: url, stream: 'after', until: asked });
      expect([r.lastCommitSeq, r.stoppedBy, r.logGap], String(asked)).toEqual([k - 1, 'LogGap', gap]);
      expect(sqliteView(file)).toEqual({ ids: upTo(k - 1), integrity: 'ok' });
    }
    for (const asked of [k - 1, k - 3]) {
      const file = db();
      const r = await restoreFromNats(file, { servers: url, stream: 'after', until: asked });
      expect([r.lastCommitSeq, r.stoppedBy, r.logGap]).toEqual([asked, 'until', null]);
      expect(sqliteView(file)).toEqual({ ids: upTo(asked), integrity: 'ok' });
    }

    const cli = await walnutRestore(url, 'after', db());
    expect(cli.status).toBe(3);
    expect(cli.line).toMatchObject({ lastCommitSeq: k - 1, stoppedBy: 'LogGap', logGap: gap });
    const before1 = await walnutRestore(url, 'after', db(), '--until', String(k - 1));
    expect(before1.status).toBe(0);
    expect(before1.line).toMatchObject({ lastCommitSeq: k - 1, stoppedBy: 'until' });
    expect(before1.line).not.toHaveProperty('logGap');
  }, 60_000);

  it('a base image past the gap: restores reach the stream\'s end and an until after that base; an until between the gap and that base stops LogGap', async () => {
    const { url, bases } = await primary('between', ROWS);
    const later = bases.find((b) => b >= 15 && b <= 22);
    expect(later, String(bases)).toBeDefined();
    const earlier = bases.filter((b) => b < later! - 4).pop()!;
    const k = earlier + 2; // a commit between two base images
    expect(k).toBeLessThan(later! - 1);
    const { before, after } = await deleteCommit(url, 'between', k);

    for (const [asked, seq, stoppedBy] of [[undefined, ROWS, null], [later! + 1, later! + 1, 'until'], [k - 1, k - 1, 'until']] as const) {
      const file = db();
      const r = await restoreFromNats(file, { servers: url, stream: 'between', until: asked });
      expect([r.lastCommitSeq, r.stoppedBy, r.logGap], String(asked)).toEqual([seq, stoppedBy, null]);
      expect(sqliteView(file)).toEqual({ ids: upTo(seq), integrity: 'ok' });
    }
    const file = db();
    const r = await restoreFromNats(file, { servers: url, stream: 'between', until: later! - 1 });
    expect([r.lastCommitSeq, r.stoppedBy, r.logGap]).toEqual([k - 1, 'LogGap', { fromSeq: k, toSeq: k, afterMessage: before, nextMessage: after }]);
    expect(sqliteView(file)).toEqual({ ids: upTo(k - 1), integrity: 'ok' });

    const whole = await walnutRestore(url, 'between', db());
    expect([whole.status, whole.line['lastCommitSeq'], whole.line['stoppedBy']]).toEqual([0, ROWS, null]);
    const cut = await walnutRestore(url, 'between', db(), '--until', String(later! - 1));
    expect([cut.status, cut.line['lastCommitSeq'], cut.line['stoppedBy']]).toEqual([3, k - 1, 'LogGap']);
  }, 60_000);

  it('a part of a commit larger than a message gone: stops before that commit, LogGap', async () => {
    const { url, bases } = await primary('parts', 8, new Set([5]));
    expect(bases.filter((b) => b > 0)).toEqual([]); // (no later base image bridges it)
    const log = await logMessages(url, 'parts');
    // commit 5's parts: `<4>.1`, `<4>.2`, ... then the one holding its COMMIT_META
    const parts = log.filter((m) => /:4\.[1-9]\d*$/.test(m.id));
    expect(parts.length).toBeGreaterThanOrEqual(3);
    // whole, every part there: no gap (the parts' numbers follow each other)
    const whole = db();
    const all = await restoreFromNats(whole, { servers: url, stream: 'parts' });
    expect([all.lastCommitSeq, all.stoppedBy, all.logGap]).toEqual([8, null, null]);
    expect(sqliteView(whole)).toEqual({ ids: upTo(8), integrity: 'ok' });
    await deleteMessage(url, 'parts', parts[1]!.seq);
    const file = db();
    const r = await restoreFromNats(file, { servers: url, stream: 'parts' });
    expect([r.lastCommitSeq, r.stoppedBy, r.logGap]).toEqual([4, 'LogGap', { fromSeq: 5, toSeq: 5, afterMessage: parts[0]!.seq, nextMessage: parts[2]!.seq }]);
    expect(sqliteView(file)).toEqual({ ids: upTo(4), integrity: 'ok' });
    const at4 = await restoreFromNats(db(), { servers: url, stream: 'parts', until: 4 });
    expect([at4.lastCommitSeq, at4.stoppedBy]).toEqual([4, 'until']);
    // its first part gone too: the message after commit 4's is part 3 of commit 5
    await deleteMessage(url, 'parts', parts[0]!.seq);
    const of4 = log.find((m) => m.commits.includes(4))!.seq;
    const again = await restoreFromNats(db(), { servers: url, stream: 'parts' });
    expect([again.lastCommitSeq, again.stoppedBy, again.logGap]).toEqual([4, 'LogGap', { fromSeq: 5, toSeq: 5, afterMessage: of4, nextMessage: parts[2]!.seq }]);
  }, 60_000);
});
