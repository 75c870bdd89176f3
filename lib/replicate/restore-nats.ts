/**
 * replicate/restore-nats.ts — restoreFromNats: point-in-time restore from a replication stream
 * (layout in nats.ts), through restore.ts.
 *
 * It takes the newest session (the newest base image's), the newest of that session's base
 * images at or before `until` (a commit sequence of the session, or a time as the primary's
 * export saw the commits), then the session's log from that base's Walnut-Log-From on, the
 * records of commits at or before the base left out: together an export stream whose base is
 * that image (a snapshot base ends with the anchored WAL_HEADER that continues its generation),
 * which restore.ts applies up to `until` with all its checks (PAGE_DELTA rebuilt and verified).
 * Older sessions (their own numbering) are not restorable from here; their bases and commits
 * stay in the stream until its retention drops them.
 */
import { readInput } from '../arguments';
import { restore, type RestoreOptions, type RestoreResult } from '../export/restore';
import { WalStreamReader } from '../export/framing';
import { KIND } from '../export/records';
import { walnutError, WalnutError } from '../errors';
import { unknownOptionName } from '../option-names';
import { checkServers, checkStreamName, connectNats, frameMessage, HEADER, messageAt, subjectsOf, type NatsLink } from './nats';

export interface NatsRestoreOptions extends RestoreOptions {
  servers: string | string[];
  stream: string;
}

interface BaseRef {
  session: string;
  seq: number;
  time: number;
  first: number;
  last: number;
  logFrom: number;
}

/** Every complete base image's final part (headers only), in stream order. */
async function baseImages(link: NatsLink, stream: string, subject: string): Promise<BaseRef[]> {
  const c = await link.js.consumers.get(stream, { filter_subjects: subject, headers_only: true });
  const out: BaseRef[] = [];
  for (;;) {
    const m = await c.next({ expires: 1000 });
    if (m === null) return out;
    const h = m.headers;
    if (h?.get(HEADER.BASE_FINAL) !== '1') {
      if (m.info.pending === 0) return out;
      continue;
    }
    const part = Number(h.get(HEADER.BASE_PART));
    const from = h.get(HEADER.LOG_FROM);
    out.push({ session: h.get(HEADER.SESSION), seq: Number(h.get(HEADER.BASE_SEQ)), time: Number(h.get(HEADER.BASE_TIME)), first: part === 0 ? m.seq : Number(h.get(HEADER.BASE_FIRST)), last: m.seq, logFrom: from ? Number(from) : m.seq + 1 });
    if (m.info.pending === 0) return out; // the last one there is now
  }
}

/** The base's records, then the log's records of commits after it, as export stream bytes. */
/** (Read lazily: restore stops pulling once it passed `until`.) */
async function* streamOf(link: NatsLink, stream: string, logSubject: string, base: BaseRef): AsyncGenerator<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (let s = base.first; s <= base.last; s++) {
    const m = await messageAt(link, stream, s);
    if (m !== null && m.subject === logSubject) continue; // published between the base's parts (publisher.ts)
    if (m === null || m.header.get(HEADER.SESSION) !== base.session) throw walnutError('WALNUT_CORRUPT', `base image part ${s} is no longer in the stream`, { reason: 'BaseGone' });
    parts.push(...WalStreamReader.fromBuffer(m.data));
  }
  yield frameMessage(parts);
  const c = await link.js.consumers.get(stream, { filter_subjects: logSubject, deliver_policy: 'by_start_sequence' as never, opt_start_seq: base.logFrom });
  for (;;) {
    const m = await c.next({ expires: 1000 });
    if (m === null || m.headers?.get(HEADER.SESSION) !== base.session) return; // the end, or a newer session
    let next = Number(m.headers.get(HEADER.FIRST_COMMIT));
    const keep: Uint8Array[] = [];
    for (const payload of WalStreamReader.fromBuffer(m.data)) {
      if (next > base.seq) keep.push(payload);
      if (payload[0] === KIND.COMMIT_META) next++;
    }
    if (keep.length > 0) yield frameMessage(keep, false);
    if (m.info.pending === 0) return; // the last message there is now
  }
}

const NATS_RESTORE_OPTIONS = ['servers', 'stream', 'until', 'force', 'onProgress'] as const;

/** The options' names, onProgress, servers and stream, checked before anything connects. */
function checkNatsRestoreOptions(options: NatsRestoreOptions): { servers: string[]; stream: string } {
  if (typeof options === 'object' && options !== null) {
    // as restore() refuses them (reason 'options'), before anything connects
    const key = unknownOptionName(options, NATS_RESTORE_OPTIONS);
    if (key !== undefined) throw walnutError('WALNUT_INVALID_ARGUMENT', `restoreFromNats takes the options ${NATS_RESTORE_OPTIONS.join(', ')}, not ${JSON.stringify(key)}`, { reason: 'options' });
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw walnutError('WALNUT_INVALID_ARGUMENT', 'onProgress must be a function', { reason: 'onProgress' });
  }
  return { servers: checkServers(options?.servers), stream: checkStreamName(options?.stream) };
}

/** restore()'s options and checks (restore.ts), from the stream named by servers and stream; onProgress counts the stream bytes restore reads. */
export async function restoreFromNats(dbPath: string, options: NatsRestoreOptions): Promise<RestoreResult> {
  const { servers, stream } = readInput('options', () => checkNatsRestoreOptions(options));
  const subjects = subjectsOf(stream);
  const link = await connectNats(servers, () => true, `walnut restore ${dbPath}`).catch((e) => {
    throw walnutError('WALNUT_IO', `cannot reach NATS at ${servers.join(',')}: ${(e as Error).message}`, { reason: 'nats', cause: e });
  });
  try {
    const bases = await baseImages(link, stream, subjects.base).catch((e) => {
      throw walnutError('WALNUT_INVALID_ARGUMENT', `cannot read the JetStream stream ${stream}: ${(e as Error).message}`, { reason: 'stream', cause: e });
    });
    const newest = bases[bases.length - 1];
    if (newest === undefined) throw walnutError('WALNUT_INVALID_ARGUMENT', `the stream ${stream} holds no complete base image`, { reason: 'NoBase' });
    const session = bases.filter((b) => b.session === newest.session);
    const until = options.until;
    const fits = (b: BaseRef): boolean =>
      until === undefined ? true : until instanceof Date ? b.time <= until.getTime() : b.seq <= Number(until);
    const base = [...session].reverse().find(fits);
    if (base === undefined) {
      const earliest = session[0]!;
      throw walnutError('WALNUT_INVALID_ARGUMENT', `until is before the earliest state the stream can restore: commit ${earliest.seq} at ${new Date(earliest.time).toISOString()} (session ${earliest.session})`, { reason: 'BeforeEarliest' });
    }
    return await restore(streamOf(link, stream, subjects.log, base), dbPath, { until, force: options.force, onProgress: options.onProgress }).catch((e) => {
      if (e instanceof WalnutError) throw e;
      throw walnutError('WALNUT_IO', `reading the JetStream stream ${stream} failed: ${(e as Error).message}`, { reason: 'nats', cause: e });
    });
  } finally {
    await link.nc.close().catch(() => undefined);
  }
}
