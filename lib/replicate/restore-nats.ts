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
 * stay in the stream until its retention drops them. A log message of another session met
 * while reading the newest one's (another client publishing on the log subject, a primary
 * this one overtook) is skipped. A stream whose subjects do not take walnut.<stream>.> (another
 * application's of that name) is refused first (WALNUT_INVALID_ARGUMENT, reason stream). A base
 * image whose first part is before the stream's first message (retention dropped it) is none.
 * Where the stream ends is asked of the stream (its last message on each subject, answered by
 * the stream's leader) before anything is read, and both reads go on until they have that
 * message: a consumer that delivers nothing for a while (a server stalled or restarting, a
 * cluster node behind its leader) is waited for, up to END_WAIT_MS, then the restore fails
 * (WALNUT_IO, reason nats). The reads took a second without a message for the end of the
 * stream: such a stall restored an earlier state than asked for, exit 0 (stoppedBy null).
 * The base's parts are fetched one at a time and handed to restore() as they come (streamOf):
 * restore writes their pages into its temporary file and checks BASE_END's hash before its
 * rename, and a part missing from the stream fails it (WALNUT_CORRUPT BaseGone) with nothing
 * renamed in. The parts were gathered whole and framed into one chunk first: 2.4 GiB of memory
 * for a 979 MiB base.
 * A gap in the session's log (a message gone: deleted, lost, cut by retention right after the
 * base) is found by the headers of the message after it (streamOf): the restore stops at the
 * commit before it and says so (stoppedBy 'LogGap', logGap naming the commits missing; `walnut
 * restore --nats` exits 3). It stopped there as a broken checksum chain (ChecksumChainBroken),
 * which read as a restore of the stream's end. No later base image can bridge it: the newest one
 * at or before `until` is the one restored, so every gap the restore meets is after it.
 */
import { readInput, refuseExtraArguments } from '../arguments';
import { checkUntil, restore, type RestoreOptions, type RestoreResult } from '../export/restore';
import { StreamMagic, WalStreamReader } from '../export/framing';
import { KIND } from '../export/records';
import { walnutError, WalnutError, withoutCode } from '../errors';
import { checkDbPath } from '../io/real-path';
import { unknownOptionName } from '../option-names';
import { backoff, checkServers, checkStreamName, connectNats, frameMessage, HEADER, HEADER_MSG_ID, isBasePart, lastMessageOn, messageAt, refuseForeignStream, subjectsOf, natsUnreachable, type NatsLink, type Subjects } from './nats';
import type { JsMsg } from '@nats-io/jetstream';

const STREAM_MAGIC = StreamMagic.V1.bytes();

/** How long a read waits for the next message before the stream's last one (header comment). */
const END_WAIT_MS = 30_000;

export interface NatsRestoreOptions extends RestoreOptions {
  servers: string | string[];
  stream: string;
}

/**
 * Commits the session's log no longer holds, met before the requested point: the restore
 * stopped at `fromSeq - 1` (stoppedBy 'LogGap'). `fromSeq`..`toSeq` are the commits missing (one
 * commit, fromSeq = toSeq, when a part of a commit larger than a message is gone); the messages
 * that held them lay between the stream's messages `afterMessage` (the last log message of the
 * session read before the gap; the base's Walnut-Log-From - 1 when none was) and `nextMessage`
 * (the first one after it, whose Walnut-First-Commit showed the gap).
 */
export interface LogGap {
  fromSeq: number;
  toSeq: number;
  afterMessage: number;
  nextMessage: number;
}

export interface NatsRestoreResult extends RestoreResult {
  /** The gap in the log that stopped the restore before the requested point (stoppedBy 'LogGap'), else null. */
  logGap: LogGap | null;
}

export interface BaseRef {
  session: string;
  seq: number;
  /** The final part's number (parts 0..part). */
  part: number;
  time: number;
  first: number;
  last: number;
  logFrom: number;
}

/**
 * The consumer's next message; null only once its stream has been silent for END_WAIT_MS (a
 * pull that expires empty, or fails while a server restarts, is pulled again).
 */
async function nextOf(c: { next(o: { expires: number }): Promise<JsMsg | null> }, stream: string, lastSeq: number, at: () => number): Promise<JsMsg> {
  const since = performance.now();
  for (;;) {
    let failure: unknown = null;
    const m = await c.next({ expires: 1000 }).catch((e: unknown) => ((failure = e), null));
    if (m !== null) return m;
    if (performance.now() - since > END_WAIT_MS) {
      throw walnutError('WALNUT_IO', `the JetStream stream ${stream} delivered nothing for ${END_WAIT_MS / 1000} s after message ${at()}, before its last message ${lastSeq}${failure === null ? '' : ` (${(failure as Error).message})`}`, { reason: 'nats', cause: failure ?? undefined });
    }
    if (failure !== null) await backoff(2); // 200 ms: a server restarting, a leader being elected
  }
}

/**
 * `ask()`, asked again while it fails (a server restarting: the request times out, the
 * connection is down) for up to END_WAIT_MS, as nextOf waits, then WALNUT_IO reason nats; a
 * stream that is not there ("not found") is no wait, rethrown at once. Asked once, a base image's
 * part, or the log's consumer, asked while the server restarted failed the restore ("reading the
 * export stream failed: timeout"), where the log's pulls after them waited through; the stream's
 * last messages asked then were WALNUT_INVALID_ARGUMENT ("cannot read the JetStream stream").
 */
async function patiently<T>(stream: string, what: string, ask: () => Promise<T>): Promise<T> {
  const since = performance.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await ask();
    } catch (e) {
      if (/not found/i.test((e as Error).message)) throw e;
      if (performance.now() - since > END_WAIT_MS) {
        throw walnutError('WALNUT_IO', `the JetStream stream ${stream} did not give ${what} for ${END_WAIT_MS / 1000} s (${(e as Error).message})`, { reason: 'nats', cause: e });
      }
      await backoff(Math.min(attempt, 2)); // 50-200 ms: a server restarting, a leader being elected
    }
  }
}

/** Every complete base image's final part (headers only), in stream order, up to the stream's message `lastSeq`. */
export async function baseImages(link: NatsLink, stream: string, subject: string, lastSeq: number): Promise<BaseRef[]> {
  const out: BaseRef[] = [];
  const c = await patiently(stream, 'a consumer of its base images', () => link.js.consumers.get(stream, { filter_subjects: subject, headers_only: true })); // (a stream that does not exist throws here)
  if (lastSeq <= 0) return out;
  let seen = 0;
  for (;;) {
    const m = await nextOf(c, stream, lastSeq, () => seen);
    seen = m.seq;
    const h = m.headers;
    // (a message without a session is not walnut's: another client's, its body no base image)
    if (h?.get(HEADER.BASE_FINAL) === '1' && h.get(HEADER.SESSION)) {
      const part = Number(h.get(HEADER.BASE_PART));
      const from = h.get(HEADER.LOG_FROM);
      out.push({ session: h.get(HEADER.SESSION), seq: Number(h.get(HEADER.BASE_SEQ)), part, time: Number(h.get(HEADER.BASE_TIME)), first: part === 0 ? m.seq : Number(h.get(HEADER.BASE_FIRST)), last: m.seq, logFrom: from ? Number(from) : m.seq + 1 });
    }
    if (m.seq >= lastSeq) return out; // the last one there was when the restore began
  }
}

/**
 * A base image part's records; a body that is not an export stream fragment (a message with
 * walnut's headers and another body: forged, or damaged in storage) fails as before
 * (WALNUT_INVALID_FRAMING, its reason), naming the message: "HeaderMissing: the stream ends
 * before its 8-byte ARKHEXP1 header (7 bytes)" read as if the JetStream stream had ended.
 */
function partRecords(data: Uint8Array, stream: string, seq: number, part: number, baseSeq: number): Uint8Array[] {
  try {
    return [...WalStreamReader.fromBuffer(data)];
  } catch (e) {
    if (!(e instanceof WalnutError) || e.code !== 'WALNUT_INVALID_FRAMING') throw e;
    throw walnutError('WALNUT_INVALID_FRAMING', `message ${seq} of the JetStream stream ${stream} (part ${part} of the base image of commit ${baseSeq}) is no export stream fragment: ${withoutCode(e.message)}`, { reason: e.reason, cause: e });
  }
}

/** The base's records, then the log's records of commits after it up to the stream's message `lastLogSeq`, as export stream bytes. */
/** (Read lazily: restore stops pulling once it passed `until`.) */
async function* streamOf(link: NatsLink, stream: string, subjects: Subjects, base: BaseRef, lastLogSeq: number, found: { gap: LogGap | null }): AsyncGenerator<Uint8Array> {
  const logSubject = subjects.log;
  // the base's parts go to restore() one at a time, as they are read (see the header: restore
  // writes their pages into its temporary file as they come, and checks BASE_END's hash before
  // its rename); they were gathered first, and the base held whole twice (its records, then
  // one message framing them all): 2.2x the database's size in memory
  yield STREAM_MAGIC;
  let next = 0; // the part due (parts are numbered 0..base.part, in stream order)
  for (let s = base.first; s <= base.last; s++) {
    const m = await patiently(stream, `its message ${s} (a base image's part)`, () => messageAt(link, stream, s));
    // a log message published between the base's parts (publisher.ts), another client's message
    // (isBasePart), or one gone from there (deleted, lost): not a part; the parts' own numbers
    // tell whether one is missing (a message gone among them failed the restore BaseGone, the
    // base whole, and so did another client's message there)
    if (m === null || !isBasePart(m, subjects.base, base.session, base.seq)) continue;
    if (Number(m.header.get(HEADER.BASE_PART)) !== next) break;
    partRecords(m.data, stream, s, next, base.seq); // (its framing checked: an error naming the message)
    yield m.data.subarray(8); // its records, framed, after its own magic
    next++;
  }
  // (a missing part fails the restore here, before BASE_END: restore() renames nothing in)
  if (next !== base.part + 1) throw walnutError('WALNUT_CORRUPT', `base image part ${next} of commit ${base.seq} is no longer in the stream`, { reason: 'BaseGone' });
  if (lastLogSeq < base.logFrom) return; // no log after the base
  const c = await patiently(stream, 'a consumer of its log', () => link.js.consumers.get(stream, { filter_subjects: logSubject, deliver_policy: 'by_start_sequence' as never, opt_start_seq: base.logFrom }));
  let seen = base.logFrom - 1;
  // Where the log must go on (gap below): `due` the next commit the restore needs, `open` a
  // commit larger than a message whose parts are being read (its part last read), `read` the
  // session's log message read last
  let due = base.seq + 1;
  let open = null as { commit: number; part: number } | null;
  let read = base.logFrom - 1;
  for (;;) {
    const m = await nextOf(c, stream, lastLogSeq, () => seen);
    seen = m.seq;
    // Another session's message: not a newer session (the base is the newest session's), but
    // another client's (or an overtaken primary's) message among this session's, which goes on
    // after it: skipped, as replicas skip it. Taken for a newer session, it ended the restore
    // there: an earlier state than the stream holds, stoppedBy null.
    if (m.headers?.get(HEADER.SESSION) !== base.session) {
      if (m.seq >= lastLogSeq) return;
      continue;
    }
    const first = Number(m.headers.get(HEADER.FIRST_COMMIT));
    // A gap: log messages of commits the restore needs are gone (deleted, lost, cut by
    // retention right after the base). This message's first commit is past the one due, or (a
    // commit larger than a message, published as parts `<seq>.1`, `<seq>.2`, ..., then `<seq'>.0`
    // ending it) it is not the part after the one read. The restore stops at the commit before
    // (restoreFromNats: stoppedBy 'LogGap'); this message's records are not read: they went on
    // from the missing ones, and were read as a broken checksum chain (stoppedBy
    // ChecksumChainBroken, the gap named nowhere).
    const part = /:\d+\.(\d+)$/.exec(m.headers.get(HEADER_MSG_ID) ?? '');
    const partOf = part === null ? null : Number(part[1]); // 0: a message ending its last commit
    const partMissing = first === due && partOf !== null && partOf > 0 && partOf !== (open?.commit === due ? open.part : 0) + 1;
    if (first > due || partMissing) {
      found.gap = { fromSeq: due, toSeq: first > due ? first - 1 : due, afterMessage: read, nextMessage: m.seq };
      return;
    }
    read = m.seq;
    open = partOf !== null && partOf > 0 ? { commit: first, part: partOf } : null;
    let next = first;
    const keep: Uint8Array[] = [];
    for (const payload of WalStreamReader.fromBuffer(m.data)) {
      if (next > base.seq) keep.push(payload);
      if (payload[0] === KIND.COMMIT_META) next++;
    }
    if (next > due) due = next; // (a message without Walnut-First-Commit, NaN, changes nothing: as before)
    if (keep.length > 0) yield frameMessage(keep, false);
    if (m.seq >= lastLogSeq) return; // the last message there was when the restore began
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
    // as restore() checks them, but before anything connects: until 'abc' was found to be
    // "before the earliest state" only after the stream was read
    checkUntil(options.until);
    if (options.force !== undefined && typeof options.force !== 'boolean') throw walnutError('WALNUT_INVALID_ARGUMENT', `force must be true or false, not ${typeof options.force}`, { reason: 'force' });
  }
  return { servers: checkServers(options?.servers), stream: checkStreamName(options?.stream) };
}

/** restore()'s options and checks (restore.ts), from the stream named by servers and stream; onProgress counts the stream bytes restore reads. */
export async function restoreFromNats(dbPath: string, options: NatsRestoreOptions): Promise<NatsRestoreResult> {
  if (arguments.length > 2) refuseExtraArguments('restoreFromNats', 'a path and options', 2, arguments);
  checkDbPath(dbPath); // before any server is reached (a Symbol threw a raw TypeError in the connection's name)
  const { servers, stream } = readInput('options', () => checkNatsRestoreOptions(options));
  const subjects = subjectsOf(stream);
  const link = await connectNats(servers, () => true, `walnut restore ${dbPath}`).catch((e) => {
    throw natsUnreachable(servers, e);
  });
  try {
    // a stream of that name that is not walnut's (its subjects do not take walnut.<stream>.>):
    // refused at once, as replicateTo and openReplica refuse it. Its consumer on the base
    // subject was refused by the server ("not a valid subset of the interest subjects"), which
    // was asked again for 30 s, then told as WALNUT_IO "did not give a consumer of its base images"
    const info = await patiently(stream, 'its configuration', () => link.jsm.streams.info(stream)).catch((e) => {
      if (e instanceof WalnutError) throw e;
      throw walnutError('WALNUT_INVALID_ARGUMENT', `cannot read the JetStream stream ${stream}: ${(e as Error).message}`, { reason: 'stream', cause: e });
    });
    refuseForeignStream(stream, info.config.subjects);
    // where the stream ends now, asked of its leader (header comment)
    const [lastBase, lastLog] = await Promise.all([
      patiently(stream, 'its last base image', () => lastMessageOn(link, stream, subjects.base)),
      patiently(stream, 'its last log message', () => lastMessageOn(link, stream, subjects.log)),
    ]).catch((e) => {
      if (e instanceof WalnutError) throw e;
      throw walnutError('WALNUT_INVALID_ARGUMENT', `cannot read the JetStream stream ${stream}: ${(e as Error).message}`, { reason: 'stream', cause: e });
    });
    const bases = await baseImages(link, stream, subjects.base, lastBase?.seq ?? 0).catch((e) => {
      if (e instanceof WalnutError) throw e;
      throw walnutError('WALNUT_INVALID_ARGUMENT', `cannot read the JetStream stream ${stream}: ${(e as Error).message}`, { reason: 'stream', cause: e });
    });
    // A base image whose first part the stream's retention dropped (its final part kept: a
    // retention below one base image, the publisher's RetentionTooSmall) is no restorable
    // state: it was the newest, and every restore failed BaseGone, or the earliest, named by
    // BeforeEarliest as the point to restore, which then failed BaseGone too.
    const whole = bases.filter((b) => b.first >= info.state.first_seq);
    const newest = whole[whole.length - 1];
    if (newest === undefined) {
      const cut = bases[bases.length - 1];
      const why = cut === undefined ? '' : `: the stream's retention dropped the first part of base image ${cut.seq} (message ${cut.first}; the stream now begins at ${info.state.first_seq}), so it holds less than one base image; raise its max_bytes / max_age (replicateTo's maxBytes / maxAgeMs)`;
      throw walnutError('WALNUT_INVALID_ARGUMENT', `the stream ${stream} holds no complete base image${why}`, { reason: 'NoBase' });
    }
    const session = whole.filter((b) => b.session === newest.session);
    const until = options.until;
    const fits = (b: BaseRef): boolean =>
      until === undefined ? true : until instanceof Date ? b.time <= until.getTime() : BigInt(b.seq) <= BigInt(until); // exact past 2^53 (Number() rounded a bigint)
    const base = [...session].reverse().find(fits);
    if (base === undefined) {
      // as restore() tells it, the earliest point in the error's earliestSeq and earliestTime too
      // (they were missing here: a caller going back to the earliest point read undefined)
      const earliest = session[0]!;
      const earliestTime = new Date(earliest.time).toISOString();
      const e = walnutError('WALNUT_INVALID_ARGUMENT', `until (${until instanceof Date ? until.toISOString() : `commit ${until}`}) is before the earliest state the stream can restore: commit ${earliest.seq} at ${earliestTime} (session ${earliest.session})`, { reason: 'BeforeEarliest' });
      throw Object.assign(e, { earliestSeq: earliest.seq, earliestTime });
    }
    const found: { gap: LogGap | null } = { gap: null };
    const r = await restore(streamOf(link, stream, subjects, base, lastLog?.seq ?? 0, found), dbPath, { until, force: options.force, onProgress: options.onProgress }).catch((e) => {
      if (e instanceof WalnutError) throw e;
      throw walnutError('WALNUT_IO', `reading the JetStream stream ${stream} failed: ${(e as Error).message}`, { reason: 'nats', cause: e });
    });
    // The log stopped at a gap (streamOf), restore() at the commit before it: null (or
    // Truncated, the parts of a commit before the gap read). That commit is the requested point
    // when `until` is a sequence it reached (stoppedBy 'until', as when the log goes on);
    // otherwise the stream holds commits past the gap the restore could not reach: 'LogGap'.
    // (A time: the commits missing may be at or before it, nobody can tell.) No later base
    // image of the session can bridge it: the newest one at or before `until` is the one
    // restored, so a gap before it is never read.
    if (found.gap !== null && (r.stoppedBy === null || r.stoppedBy === 'Truncated')) {
      if (until !== undefined && !(until instanceof Date) && BigInt(r.lastCommitSeq) >= BigInt(until)) return { ...r, stoppedBy: 'until', logGap: null };
      return { ...r, stoppedBy: 'LogGap', logGap: found.gap };
    }
    return { ...r, logGap: null };
  } finally {
    await link.nc.close().catch(() => undefined);
  }
}
