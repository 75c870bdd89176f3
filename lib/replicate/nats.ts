/**
 * replicate/nats.ts — the one place that talks to NATS: loads the client packages
 * (@nats-io/transport-node, @nats-io/jetstream; only when replication is used), connects with
 * reconnects forever (the client's writes without its copy: writeWithoutCopy; a failed attempt's
 * socket closed: closeFailedConnects), creates or
 * checks the stream, and names its subjects and headers.
 *
 * Layout of a replication stream `S` (JetStream stream name S, subjects under `walnut.S`):
 *   walnut.S.log    commits: each message an ARKHEXP1 stream fragment (magic, then framed
 *                   records: WAL_HEADER, FRAMES / PAGE_DELTA, COMMIT_META) of one session,
 *                   commits in order; a commit larger than a message spans several
 *   walnut.S.base   base images: a few messages (parts) in order, BASE_META first,
 *                   BASE_PAGES, BASE_END last; log messages may lie between them in the
 *                   stream (a later base does not hold the log up: publisher.ts), and
 *                   another client's messages on any subject: readers of the parts skip
 *                   all but the parts (isBasePart)
 * Headers: Walnut-Session (every message; a session = one numbering of commits, publisher.ts);
 * on log messages Walnut-First-Commit (the commit the message's first record belongs to);
 * on base parts Walnut-Base-Seq (the commit the image is the state after), Walnut-Base-Time
 * (when the primary's export saw that commit, unix ms), Walnut-Base-Part
 * (0, 1, ...), Walnut-Base-Final ('1' on the last part), Walnut-Base-First (stream sequence of
 * part 0) and Walnut-Log-From (the log's stream sequence from which the commits after the base
 * are found); on a session's first base image's final part Walnut-Start-Marked ('1': this
 * session's log marks its start, below; absent in streams of walnut before it). Walnut-Session-Start
 * (on one log message of a session: the first cut after its export's first pass, or a message
 * of no records when every commit of that pass was cut already) names the commit S whose state
 * is the session's start: the database as the export found it (its first base image, then the
 * WAL's commits as of then; S = the base's commit when the WAL held none). The commits through S
 * are in that message or before it. A replica re-basing onto a marked first base applies the base
 * and the commits through S as one commit (replica.ts "Re-basing"). Nats-Msg-Id:
 * `<session>:<commit seq>.<part>` (log; `<session>:<S>.start` for a mark of no records) or `<session>:base<seq>.<part>`
 * (`base<seq>r<n>.<part>` for the session's n-th base image again at that commit: an idle
 * primary's, in a stream with a max age), so a publish retried after a lost ack is dropped by
 * the stream's duplicate window. Each
 * message also names the publisher's message before it in Nats-Expected-Last-Msg-Id (the first
 * one the stream's last sequence in Nats-Expected-Last-Sequence), so several can be in flight
 * and none is stored before the one ahead of it (pipeline.ts).
 */
import type { JetStreamClient, JetStreamManager, JetStreamPublishOptions, StoredMsg } from '@nats-io/jetstream';

import { isWalnutError, walnutError, type WalnutError } from '../errors';
import { StreamMagic } from '../export/framing';
import { unknownOptionName } from '../option-names';

export const HEADER = {
  SESSION: 'Walnut-Session',
  FIRST_COMMIT: 'Walnut-First-Commit',
  BASE_SEQ: 'Walnut-Base-Seq',
  BASE_TIME: 'Walnut-Base-Time',
  BASE_PART: 'Walnut-Base-Part',
  BASE_FINAL: 'Walnut-Base-Final',
  BASE_FIRST: 'Walnut-Base-First',
  LOG_FROM: 'Walnut-Log-From',
  START_MARKED: 'Walnut-Start-Marked',
  SESSION_START: 'Walnut-Session-Start',
} as const;

/** JetStream's own header: the id the duplicate window and Nats-Expected-Last-Msg-Id compare. */
export const HEADER_MSG_ID = 'Nats-Msg-Id';

export interface StreamLimits {
  /** Stream replicas when the stream is created (1..5; 3 for a 3-node cluster). Default 1. */
  replicas?: number;
  /** Retention by size (bytes) and age (ms) when the stream is created; default unlimited. */
  maxBytes?: number;
  maxAgeMs?: number;
  /** The stream's duplicate window when created (ms, default 120,000). */
  duplicateWindowMs?: number;
}

export interface Subjects {
  log: string;
  base: string;
}

export function subjectsOf(stream: string): Subjects {
  return { log: `walnut.${stream}.log`, base: `walnut.${stream}.base` };
}

/** The longest stream name walnut takes (checkStreamName; a replica's position record holds one). */
export const MAX_STREAM_NAME = 64;

const STREAM_NAME = new RegExp(`^[A-Za-z0-9_-]{1,${MAX_STREAM_NAME}}$`);

/** A JetStream stream name: letters, digits, '-' and '_' (NATS forbids '.', '*', '>', spaces). */
export function checkStreamName(stream: unknown): string {
  if (typeof stream !== 'string' || !STREAM_NAME.test(stream)) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `stream must be a JetStream stream name (1-${MAX_STREAM_NAME} letters, digits, '-' or '_'), not ${JSON.stringify(stream)}`, { reason: 'stream' });
  }
  return stream;
}

/** `o[name]`: `dflt` when undefined, else an integer in min..max (WALNUT_INVALID_ARGUMENT, reason name). */
export function integerOption<T extends object>(o: T, name: keyof T & string, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[name];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw walnutError('WALNUT_INVALID_ARGUMENT', `replication option ${name} must be an integer in ${min}..${max}`, { reason: name });
  return v;
}

/** Refuses an option `what` does not take (reason: its name), as open() does: a misspelt maxInflight would be dropped silently. */
export function checkOptionNames(o: object, known: readonly string[], what: string): void {
  const key = unknownOptionName(o, known);
  if (key !== undefined) throw walnutError('WALNUT_INVALID_ARGUMENT', `${key} is not an option of ${what} (${known.join(', ')})`, { reason: key });
}

export function checkServers(servers: unknown): string[] {
  const list = typeof servers === 'string' ? servers.split(',') : servers;
  if (!Array.isArray(list) || list.length === 0 || !list.every((s) => typeof s === 'string' && s.trim().length > 0)) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `servers must be a NATS URL or a list of them, not ${JSON.stringify(servers)}`, { reason: 'servers' });
  }
  const out = list.map((s: string) => s.trim());
  for (const s of out) {
    const why = unreachableAddress(s);
    if (why !== null) throw walnutError('WALNUT_INVALID_ARGUMENT', `the NATS server address ${JSON.stringify(s)} ${why}`, { reason: 'servers' });
  }
  return out;
}

/**
 * Why no client can ever connect to `address`, or null: a port past 65535 or no host (the
 * client retried such an address for ever: 'Invalid URL' at every attempt), a websocket URL
 * (the node client takes none). Any other scheme is the client's to read (it connects to the
 * host and port of http://... as of nats://...).
 */
function unreachableAddress(address: string): string | null {
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(address) ? address : `nats://${address}`;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'is not a host[:port] or URL (a port is 1-65535)';
  }
  if (u.protocol === 'ws:' || u.protocol === 'wss:') return 'is a websocket URL: walnut connects with the node client (nats:// or host:port)';
  if (u.hostname === '') return 'names no host';
  return null;
}

/**
 * The client's types live in @nats-io/nats-core, which walnut does not depend on directly
 * (transport-node re-exports them from its `/internal` subpath, which tsc's Node10 resolution
 * cannot see): message headers are named through the direct dependency @nats-io/jetstream, the
 * connection by the members walnut calls.
 */
export type MsgHdrs = JetStreamPublishOptions['headers'];
export interface NatsConnection {
  close(): Promise<void>;
  status(): AsyncIterable<{ type: string }>;
  /** The server's INFO once connected: max_payload is the largest message it takes (headers and body). */
  readonly info?: { max_payload?: number };
}

export interface NatsLink {
  nc: NatsConnection;
  /** JetStream API calls time out after 5 s (the client's default). */
  js: JetStreamClient;
  jsm: JetStreamManager;
  /**
   * The same with QUICK_API_TIMEOUT_MS, for calls retried at once after a timeout: while a
   * cluster elects a stream leader a JetStream API request gets no answer at all, so a 5 s
   * timeout made a caller that had just missed the election wait up to 5 s more.
   */
  quick: { js: JetStreamClient; jsm: JetStreamManager };
  headers(): MsgHdrs;
}

/** See NatsLink.quick (a JetStream API answer takes milliseconds on a healthy cluster). */
export const QUICK_API_TIMEOUT_MS = 1000;

type Modules = { transport: typeof import('@nats-io/transport-node') & { headers(): MsgHdrs }; jetstream: typeof import('@nats-io/jetstream') };
let modules: Promise<Modules> | null = null;

function load(): Promise<Modules> {
  modules ??= (async () => {
    try {
      const loaded = { transport: (await import('@nats-io/transport-node')) as unknown as Modules['transport'], jetstream: await import('@nats-io/jetstream') };
      closeFailedConnects();
      return loaded;
    } catch (e) {
      modules = null;
      throw walnutError('WALNUT_INVALID_ARGUMENT', `replication needs the packages @nats-io/transport-node and @nats-io/jetstream: ${(e as Error).message}`, { reason: 'nats', cause: e });
    }
  })();
  return modules;
}

/** What closeFailedConnects needs of @nats-io/transport-node 3.x's NodeTransport. */
interface TransportInternals {
  connected: boolean;
  done: boolean;
  socket?: { destroy(): void };
  close(err?: Error): Promise<void>;
}

/**
 * A connect attempt that failed closes its socket. nats-core ends an attempt that got no INFO
 * within `timeout` (2 s) by closing the transport, and @nats-io/transport-node (3.4.0) ignores
 * the close of a transport that never connected: the socket of a peer that took the TCP
 * connection and said nothing (not a NATS server: an HTTP or database port, a server hung
 * before its INFO) stayed open. `walnut restore --nats` and `walnut replica` at such an address
 * printed "cannot reach NATS at ...: timeout" and then never exited (the socket kept the process
 * alive), and a publisher retrying it kept one more socket open every attempt. Here such a
 * close also destroys the socket and marks the transport done (its connect, should the peer
 * answer later, then drops the socket: its own `done` checks). Left as it is when the
 * client's internals are not the shape this version knows (another client version).
 */
function closeFailedConnects(): void {
  let proto: Partial<TransportInternals> | undefined;
  try {
    proto = (require('@nats-io/transport-node/lib/node_transport') as { NodeTransport?: { prototype: Partial<TransportInternals> } }).NodeTransport?.prototype;
  } catch {
    return; // another layout of the package: its own close
  }
  const own = proto?.close;
  if (proto === undefined || typeof own !== 'function' || (own as { walnutClosesFailed?: boolean }).walnutClosesFailed === true) return;
  const close = function (this: TransportInternals, err?: Error): Promise<void> {
    if (!this.connected && !this.done) {
      this.done = true;
      this.socket?.destroy();
    }
    return own.call(this, err);
  };
  (close as { walnutClosesFailed?: boolean }).walnutClosesFailed = true;
  proto.close = close;
}

/** Thrown into a connect attempt, a stream call or a backoff that `interrupted` cut short. */
const INTERRUPTED = new Error('given up: the caller stopped retrying');

/**
 * `p`, or INTERRUPTED as soon as `interrupted` is aborted (when the caller gives up: a connect
 * attempt (2 s timeout) and a backoff (up to 2 s) otherwise ran their course, so stop()
 * overran its stopTimeoutMs by up to 4 s). A connection that `p` still makes is handed to
 * `discard`. The abort listener goes with the wait (a publisher retrying for days adds none).
 */
async function unlessInterrupted<T>(p: Promise<T>, interrupted: AbortSignal | undefined, discard?: (late: T) => void): Promise<T> {
  if (interrupted === undefined) return p;
  let onAbort = (): void => undefined;
  const stop = new Promise<never>((_, reject) => {
    onAbort = () => reject(INTERRUPTED);
    if (interrupted.aborted) onAbort();
    else interrupted.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([p, stop]);
  } catch (e) {
    if (e === INTERRUPTED && discard !== undefined) void p.then(discard, () => undefined);
    throw e;
  } finally {
    interrupted.removeEventListener('abort', onAbort);
  }
}

/**
 * Connects (retrying the first connection until `stopped()`, telling `onRetry` WALNUT_IO reason
 * Unreachable at the first failure and every tenth after), reconnecting forever after. A
 * dropped connection is the client's to heal; JetStream calls made meanwhile fail and the
 * caller retries them (same Nats-Msg-Id). `interrupted` is aborted once `stopped()` holds: the
 * attempt or backoff in progress then ends at once.
 */
export async function connectNats(servers: string[], stopped: () => boolean, name: string, onRetry?: (e: WalnutError) => void, interrupted?: AbortSignal): Promise<NatsLink> {
  const { transport, jetstream } = await load();
  for (let attempt = 0; ; attempt++) {
    try {
      // noAsyncTraces: the client otherwise makes an Error (a stack trace) for every request
      // it sends, to have it at hand should the request fail: a few µs of CPU per publish
      const connecting = transport.connect({ servers, name, maxReconnectAttempts: -1, reconnectTimeWait: 250, waitOnFirstConnect: false, timeout: 2000, noAsyncTraces: true });
      const nc = await unlessInterrupted(connecting, interrupted, (late) => void late.close().catch(() => undefined));
      writeWithoutCopy(nc);
      const quick = { timeout: QUICK_API_TIMEOUT_MS };
      return {
        nc,
        js: jetstream.jetstream(nc),
        jsm: await jetstream.jetstreamManager(nc, { checkAPI: false }),
        quick: { js: jetstream.jetstream(nc, quick), jsm: await jetstream.jetstreamManager(nc, { checkAPI: false, ...quick }) },
        headers: () => transport.headers(),
      };
    } catch (e) {
      if (stopped()) throw walnutError('WALNUT_CLOSED', `no NATS server answered: ${(e as Error).message}`, { cause: e });
      // told at the first failed attempt and then about every 20 s (backoff tops out at 2 s): a
      // caller retrying forever against a wrong URL otherwise sees nothing at all
      if (onRetry !== undefined && attempt % 10 === 0) onRetry(walnutError('WALNUT_IO', `no NATS server answers at ${servers.join(', ')} (${(e as Error).message}); retrying`, { reason: 'Unreachable', cause: e }));
      await unlessInterrupted(backoff(attempt), interrupted).catch(() => undefined); // stopped(): the next attempt ends at once
    }
  }
}

/**
 * What a caller of connectNats that gave up throws (replica start, restoreFromNats): WALNUT_IO,
 * reason 'nats', naming the client's own reason. connectNats's WALNUT_CLOSED ("no NATS server
 * answered: ...") was nested whole in that message ("WALNUT_IO: cannot reach NATS at X:
 * WALNUT_CLOSED: no NATS server answered: connection refused"), two codes in one line; another
 * WalnutError (the client packages missing) is itself the answer and passes unchanged.
 */
export function natsUnreachable(servers: string[], e: unknown): WalnutError {
  if (isWalnutError(e) && e.code !== 'WALNUT_CLOSED') return e;
  const why = isWalnutError(e) && e.cause instanceof Error ? e.cause.message : (e as Error).message;
  return walnutError('WALNUT_IO', `cannot reach NATS at ${servers.join(',')}: ${why}`, { reason: 'nats', cause: e });
}

/** What writeWithoutCopy needs of the client's internals (@nats-io/nats-core 3.x's ProtocolHandler and NodeTransport). */
interface ProtocolInternals {
  infoReceived: boolean;
  connected: boolean;
  outbound: { buffers: Uint8Array[]; size(): number; reset(): void };
  transport: { isClosed: boolean; socket?: { destroyed: boolean; cork(): void; uncork(): void; write(b: Uint8Array): boolean } };
  flushPending(): void;
}

/**
 * The client's flushes written without its copy. nats-core gathers what a turn of the event
 * loop publishes (each message's protocol line, headers, body, CRLF) and, to write it,
 * packs the pieces into one new Uint8Array (DataBuffer.pack): every byte published went
 * through fresh memory (page faults, and V8's external-memory accounting running garbage
 * collections; 5-9% of the replication worker's busy time at 64 committers, session 10).
 * Here the same pieces go to the socket corked, as one writev: no copy in JS, the kernel
 * copies them as it did the packed one, in the same order. The pieces stay referred to by
 * the socket until written; publisher.ts takes a message body back only once the stream
 * acknowledged it (or a later message), i.e. once it was written (see its header). When the
 * client's internals are not the shape this version knows (another client version), its own
 * flush is left in place. Not connected, or with the socket gone, the client's own flush
 * runs (it keeps or drops the pieces as it always did).
 */
export function writeWithoutCopy(nc: NatsConnection): void {
  const protocol = (nc as unknown as { protocol?: Partial<ProtocolInternals> }).protocol;
  const own = protocol?.flushPending;
  if (protocol === undefined || typeof own !== 'function' || !Array.isArray(protocol.outbound?.buffers) || typeof protocol.outbound.reset !== 'function' || typeof protocol.transport !== 'object') return;
  protocol.flushPending = function (this: ProtocolInternals): void {
    const socket = this.transport.socket;
    if (!this.infoReceived || !this.connected || this.transport.isClosed || socket === undefined || socket.destroyed || typeof socket.cork !== 'function') return own.call(this);
    const pieces = this.outbound.buffers;
    if (pieces.length === 0) return;
    socket.cork();
    for (const piece of pieces) socket.write(piece);
    socket.uncork();
    this.outbound.reset();
  };
}

/**
 * Refuses (WALNUT_INVALID_ARGUMENT, reason stream) an existing stream whose `subjects` do not
 * take walnut.<stream>.> (another application's stream of that name): walnut's messages would
 * be refused at every try, and a base image waited for on a subject it can never hold.
 */
export function refuseForeignStream(stream: string, subjects: readonly string[] | undefined): void {
  const wanted = `walnut.${stream}.>`;
  if (!subjects?.some((s) => s === wanted || s === 'walnut.>' || s === '>')) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `the JetStream stream ${stream} exists but does not take the subjects ${wanted}: not a walnut replication stream`, { reason: 'stream' });
  }
}

/**
 * Creates the stream (subjects walnut.S.>, file storage, limits) or checks an existing one
 * covers them; retried (a cluster needs a moment to elect a leader) until `stopped()`.
 * Resolves to the stream's last sequence, its max_msg_size (-1: none; an existing stream's
 * may be set, and a larger message is refused at every try) and its max_age in ms (0: none;
 * publisher.ts keeps a base image in a stream that drops messages by age). A failure to create or read it
 * (the server's answer: replicas > 1 on a server not in a cluster, a cluster without a quorum)
 * is told to `onRetry` at the first failed attempt and about every 20 s after, as connectNats
 * tells an unreachable server: retried in silence, `ready` waited forever without a word.
 * The stream is looked up with the quick API timeout at every other attempt, the first one
 * included: a request lost to a server restarting (sent as it came back, before its JetStream
 * answered) held the publisher's next session 5 s; a server that answers slowly, but within the
 * client's 5 s, still does so at the attempts in between.
 */
export async function ensureStream(link: NatsLink, stream: string, limits: StreamLimits, stopped: () => boolean, interrupted?: AbortSignal, onRetry?: (e: WalnutError) => void): Promise<{ lastSeq: number; maxMsgSize: number; maxAgeMs: number }> {
  const subjects = [`walnut.${stream}.>`];
  for (let attempt = 0; ; attempt++) {
    try {
      const info = await unlessInterrupted((attempt % 2 === 0 ? link.quick.jsm : link.jsm).streams.info(stream), interrupted).catch((e: Error) => {
        if (/not found/i.test(e.message)) return null;
        throw e;
      });
      if (info !== null) {
        refuseForeignStream(stream, info.config.subjects);
        return { lastSeq: info.state.last_seq, maxMsgSize: info.config.max_msg_size ?? -1, maxAgeMs: (info.config.max_age ?? 0) / 1e6 };
      }
      const created = await unlessInterrupted(link.jsm.streams.add({
        name: stream,
        subjects,
        storage: 'file' as never,
        num_replicas: limits.replicas ?? 1,
        max_bytes: limits.maxBytes ?? -1,
        max_age: (limits.maxAgeMs ?? 0) * 1e6,
        duplicate_window: (limits.duplicateWindowMs ?? 120_000) * 1e6,
      }), interrupted);
      return { lastSeq: created.state.last_seq, maxMsgSize: created.config.max_msg_size ?? -1, maxAgeMs: (created.config.max_age ?? 0) / 1e6 };
    } catch (e) {
      if ((e as { code?: string }).code === 'WALNUT_INVALID_ARGUMENT') throw e;
      if (stopped()) throw walnutError('WALNUT_CLOSED', 'replication stopped before the stream was ready', { cause: e });
      if (onRetry !== undefined && attempt % 10 === 0) onRetry(walnutError('WALNUT_IO', `the JetStream stream ${stream} cannot be created or read (${(e as Error).message}); retrying`, { reason: 'StreamUnavailable', cause: e }));
      await unlessInterrupted(backoff(attempt), interrupted).catch(() => undefined);
    }
  }
}

/**
 * Whether `m`, a message of the stream between a base image's first and final parts, is one of
 * its parts (on `baseSubject`, of that session and commit). Anything else there is not, and
 * readers of the parts skip it: the log's messages published meanwhile (publisher.ts), and
 * another client's on any subject the stream takes (`nats pub walnut.S.x`, a message without
 * a Walnut-Session on walnut.S.base). The parts' own numbers tell whether one is missing. Only
 * log messages were skipped: another client's message among the parts of a later base image
 * made it an incomplete one (restoreFromNats failed BaseGone, a new replica waited for ever).
 */
export function isBasePart(m: StoredMsg, baseSubject: string, session: string, seq: number): boolean {
  return m.subject === baseSubject && m.header?.get(HEADER.SESSION) === session && Number(m.header.get(HEADER.BASE_SEQ)) === seq;
}

/** The stream's message at `seq`, or null when it is not there (deleted, past retention). */
export async function messageAt(link: NatsLink, stream: string, seq: number): Promise<StoredMsg | null> {
  try {
    return await link.jsm.streams.getMessage(stream, { seq });
  } catch (e) {
    if (/not found/i.test((e as Error).message)) return null;
    throw e;
  }
}

/** The last message on `subject`, or null (`quick`: see NatsLink.quick). */
export async function lastMessageOn(link: NatsLink, stream: string, subject: string, quick = false): Promise<StoredMsg | null> {
  try {
    return await (quick ? link.quick.jsm : link.jsm).streams.getMessage(stream, { last_by_subj: subject });
  } catch (e) {
    if (/not found/i.test((e as Error).message)) return null;
    throw e;
  }
}

/**
 * The last message on `subject` that is walnut's (it carries Walnut-Session), or null. Another
 * client's message last on the subject (`nats pub walnut.S.base ...`) is looked past: taken for
 * the newest base image (a base part being published, since it is not a final one), it kept
 * every new replica waiting for ever. Looking past it reads the subject's headers in order up to
 * it; a consumer silent for a second fails the call (callers retry).
 */
export async function lastWalnutMessageOn(link: NatsLink, stream: string, subject: string, quick = false): Promise<StoredMsg | null> {
  const last = await lastMessageOn(link, stream, subject, quick);
  if (last === null || last.header?.get(HEADER.SESSION)) return last;
  const c = await link.js.consumers.get(stream, { filter_subjects: subject, headers_only: true });
  let found = 0;
  for (;;) {
    const m = await c.next({ expires: 1000 });
    if (m === null) throw walnutError('WALNUT_IO', `the JetStream stream ${stream} delivered nothing on ${subject} before its message ${last.seq}`, { reason: 'nats' });
    if (m.headers?.get(HEADER.SESSION)) found = m.seq;
    if (m.seq >= last.seq) break;
  }
  return found === 0 ? null : messageAt(link, stream, found);
}

/** 50 ms doubling to 2 s. */
export function backoff(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.min(2000, 50 << Math.min(attempt, 6))));
}

/** An ARKHEXP1 stream fragment: the magic (unless `magic` is false), then each payload framed (u64 big-endian length). */
export function frameMessage(payloads: readonly Uint8Array[], magic = true): Uint8Array {
  return frameInto(new Uint8Array(framedSize(payloads, magic)), payloads, magic);
}

/** The bytes frameMessage(payloads, magic) makes. */
export function framedSize(payloads: readonly Uint8Array[], magic = true): number {
  let n = magic ? 8 : 0;
  for (const p of payloads) n += 8 + p.length;
  return n;
}

const MAGIC = StreamMagic.V1.bytes();

/** frameMessage into `out` (at least framedSize bytes long; memory of the caller's, reused): its first framedSize bytes. */
export function frameInto(out: Uint8Array, payloads: readonly Uint8Array[], magic = true): Uint8Array {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (magic) out.set(MAGIC, 0);
  let at = magic ? 8 : 0;
  for (const p of payloads) {
    dv.setUint32(at, 0);
    dv.setUint32(at + 4, p.length);
    out.set(p, at + 8);
    at += 8 + p.length;
  }
  return out.subarray(0, at);
}
