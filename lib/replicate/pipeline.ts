/**
 * replicate/pipeline.ts — OrderedPublishes: JetStream publishes of one writer, several in
 * flight, stored in the stream in the order they were handed in, each once.
 *
 * The chain (why a failed message can never be overtaken):
 *  - Every message carries the Nats-Msg-Id of the message handed in before it as
 *    Nats-Expected-Last-Msg-Id; the stream stores a message only while its last message is
 *    exactly that one (a JetStream check, applied in proposal order on the stream's leader and
 *    replicas alike), else it answers "wrong last msg ID". So message k+1 can only be stored
 *    right after message k: if k failed (refused, lost, its connection gone), every later
 *    message in flight is refused too, whatever the server or the client's reconnect buffer
 *    delivers later (a stale copy of k+1 still names k). The messages of this writer form
 *    one contiguous run of the stream, in order.
 *  - Ids are never reused (publisher.ts: session + commit sequence + part), and the stream's
 *    duplicate window is checked BEFORE the expectation (nats-server 2.9: a retried message
 *    already stored answers "duplicate" with its sequence), so a retry after a lost ack is
 *    acknowledged, never stored twice.
 *  - Acknowledgements: an ack of message j proves every message before j stored (the chain),
 *    at sequences seq(j) - 1, seq(j) - 2, ... (contiguous). So after a failure the pipeline
 *    waits for everything it has in flight to settle, takes the longest proven prefix as
 *    stored, and sends the rest again in order, same ids, same bytes. Messages leave the
 *    pipeline (settle()) only as stored prefixes, in order.
 *  - The chain's first link: the stream's last sequence when the writer began
 *    (Nats-Expected-Last-Sequence). When a message is refused as "wrong last" with nothing
 *    after it proven, the pipeline looks at the stream's last message: one of its own
 *    (stored, its ack lost past the duplicate window) is taken as stored with everything
 *    before it; anything else (the server lost its last id in a restart after the duplicate
 *    window, or another writer's message) re-anchors the chain on that last sequence, counted
 *    in `resyncs`. A non-walnut writer on the stream is outside what this guarantees for the
 *    messages around its own.
 *  - A stream that ends before this writer's last stored message (or at an earlier one of its
 *    own), or is gone (deleted: #streamGone), lost messages it had acknowledged (a cluster's
 *    new leader that had not caught up; not a message of its own past that one, which is still
 *    in its place: one sent before a drop() and stored after it, the chain going on from there):
 *    settle() rejects with WALNUT_IO reason StreamLost, nothing pending kept, the chain
 *    re-anchored on the stream's last sequence; the publisher begins a new session.
 *  - Another walnut primary on the same stream (a message id of a session this pipeline never
 *    published, stored after this pipeline's own messages) is refused: settle() rejects with
 *    WALNUT_CONFLICT reason OtherPrimary and replication stops (one stream per primary; two
 *    interleaved sessions made every replica re-base over and over, with no error).
 *  - A message can wait for an earlier one's stream sequence (`after`): it is not sent before
 *    that one is stored (a base image's parts name their part 0, publisher.ts).
 */
import { walnutError, WalnutError } from '../errors';
import { type NatsLink, backoff, HEADER_MSG_ID, messageAt } from './nats';

/** A message handed to the pipeline; `seq` is set once it is stored. */
export interface Outgoing {
  subject: string;
  /** The message's bytes, made when it is sent (again: the same bytes), so that only messages on the wire are held framed. */
  body: () => Uint8Array;
  msgId: string;
  /** Headers, given the stream sequence of `after` (when there is one). */
  headers: (afterSeq: number) => Record<string, string>;
  after: Outgoing | null;
  seq?: number;
  /** When it last went on the wire and when the stream was known to hold it (performance.now(); set here). */
  sentAt?: number;
  storedAt?: number;
}

export interface PipelineStats {
  /** Messages stored (acknowledged or proven), their bytes, retried sends, duplicate acks, chain re-anchors. */
  messages: number;
  bytesPublished: number;
  publishRetries: number;
  duplicates: number;
  resyncs: number;
  /** Messages on the wire now, and the most at once. */
  inFlight: number;
  peakInFlight: number;
  lastError: string | null;
}

type Expect = { lastMsgID: string } | { lastSequence: number };
type Result = { ok: true; seq: number; duplicate: boolean } | { ok: false; error: Error };

interface Pending {
  msg: Outgoing;
  result: Promise<Result> | null;
  /** The body's length when last sent. */
  bytes: number;
}

const WRONG_LAST = /wrong last (msg id|sequence)/i;

/** How often a publish the stream keeps refusing is told again (ms; see #tellRefused). */
const REFUSED_TELL_MS = 20_000;

/** The session a message id names (publisher.ts: `<session>:<seq>.<part>`). */
const sessionOf = (msgId: string): string => msgId.slice(0, Math.max(0, msgId.indexOf(':')));

export class OrderedPublishes {
  readonly stats: PipelineStats = { messages: 0, bytesPublished: 0, publishRetries: 0, duplicates: 0, resyncs: 0, inFlight: 0, peakInFlight: 0, lastError: null };
  /** Handed in, not yet stored, in order; the first `#sent` are on the wire. */
  #pending: Pending[] = [];
  #sent = 0;
  /** What the first pending message expects: the last stored message of this writer, or a sequence. */
  #chain: Expect;
  #failures = 0;
  #settling = false;
  /** The stream sequence of the last message stored (0: none yet). */
  #lastStoredSeq = 0;
  /** The sessions (message id prefixes) whose messages this pipeline stored. */
  readonly #sessions = new Set<string>();
  /** When a refusal was last told (#tellRefused), or null while messages are stored. */
  #toldRefusedAt: number | null = null;

  constructor(
    readonly link: NatsLink,
    readonly stream: string,
    lastSeq: number,
    readonly maxInFlight: number,
    readonly timeoutMs = 2000,
    /** Told of a publish the stream refuses (see #tellRefused). */
    readonly onRefused: (e: WalnutError) => void = () => undefined,
  ) {
    this.#chain = { lastSequence: lastSeq };
  }

  /** Messages handed in and not yet stored. */
  get size(): number {
    return this.#pending.length;
  }

  /** Whether another message would go on the wire at once. */
  get room(): boolean {
    return this.#pending.length < this.maxInFlight;
  }

  add(msg: Outgoing): void {
    this.#pending.push({ msg, result: null, bytes: 0 });
    if (!this.#settling) this.#sendMore();
  }

  /**
   * Drops what is not stored (an abandoned session): its sends may still land, after the last
   * stored message only (the chain), and the next message handed in expects that one.
   */
  drop(): void {
    this.#pending = [];
    this.#sent = 0;
    this.stats.inFlight = 0;
  }

  /**
   * Waits for the oldest message: resolves with the messages now known stored (a prefix, in
   * order, `seq` set), or with none after a failure (then everything not stored is sent
   * again, after a backoff). Not called again before it resolves.
   */
  async settle(): Promise<Outgoing[]> {
    const head = this.#pending[0];
    if (head === undefined) return [];
    if (head.result === null) this.#sendMore();
    const first = await head.result!;
    if (this.#pending[0] !== head) return []; // dropped meanwhile
    if (first.ok) {
      this.#count(first, head);
      return this.#stored(0, first.seq);
    }
    this.#settling = true;
    try {
      const wire = this.#pending.slice(0, this.#sent);
      const results = await Promise.all(wire.map((p) => p.result!));
      if (this.#pending[0] !== head) return [];
      let proven = -1;
      for (let j = results.length - 1; j >= 0; j--) {
        const r = results[j]!;
        if (r.ok) {
          proven = j;
          break;
        }
      }
      let seq = proven >= 0 ? (results[proven] as { seq: number }).seq : 0;
      for (let j = 0; j <= proven; j++) {
        const r = results[j]!;
        this.#count(r.ok ? r : { seq: 0, duplicate: false }, wire[j]!);
      }
      if (proven < 0) {
        const error = first.error;
        this.stats.lastError = `publish: ${error.message}`;
        if (WRONG_LAST.test(error.message)) {
          const found = await this.#resync().catch((e: Error) => {
            if (e instanceof WalnutError && (e.reason === 'OtherPrimary' || e.reason === 'StreamLost')) throw e;
            this.stats.lastError = `publish: ${e.message}`;
            return null;
          });
          if (this.#pending[0] !== head) return [];
          if (found !== null) {
            proven = found.index;
            seq = found.seq;
            for (let j = 0; j <= proven; j++) this.#count({ seq: 0, duplicate: true }, this.#pending[j]!);
          }
        } else if (await this.#streamGone()) {
          if (this.#pending[0] !== head) return [];
          this.#lost(0, 'it no longer exists: deleted');
        } else {
          this.#tellRefused(error);
        }
      }
      if (proven >= 0) {
        // those after the proven prefix failed or were refused behind a failure: sent again
        this.stats.publishRetries += Math.max(0, this.#sent - proven - 1);
        this.#sent = proven + 1;
        for (const p of this.#pending.slice(this.#sent)) p.result = null;
        return this.#stored(proven, seq);
      }
      this.stats.publishRetries += this.#sent;
      this.#sent = 0;
      for (const p of this.#pending) p.result = null;
      this.stats.inFlight = 0;
      await backoff(Math.min(this.#failures++, 3));
      return [];
    } finally {
      this.#settling = false;
      this.#sendMore();
    }
  }

  /** Messages 0..last are stored, `last` at `seq`: out of the pipeline, the chain after them. */
  #stored(last: number, seq: number): Outgoing[] {
    const now = performance.now();
    const done = this.#pending.splice(0, last + 1).map((p, i) => {
      p.msg.seq = seq - (last - i);
      p.msg.storedAt ??= now; // proven by a later message's ack (or found by #resync)
      return p.msg;
    });
    this.#chain = { lastMsgID: done[done.length - 1]!.msgId };
    this.#lastStoredSeq = seq;
    for (const m of done) this.#sessions.add(sessionOf(m.msgId));
    this.#failures = 0;
    this.#toldRefusedAt = null;
    this.#sent = Math.max(0, this.#sent - done.length);
    this.stats.inFlight = this.#sent;
    if (!this.#settling) this.#sendMore();
    return done;
  }

  /** The stream lost stored messages (see the header): nothing pending kept, the chain re-anchored on `at`, StreamLost thrown. */
  #lost(at: number, what: string): never {
    const stored = 'lastMsgID' in this.#chain ? this.#chain.lastMsgID : `sequence ${this.#lastStoredSeq}`;
    this.#chain = { lastSequence: at };
    this.#lastStoredSeq = at;
    this.stats.resyncs++;
    this.drop();
    throw walnutError('WALNUT_IO', `the JetStream stream ${this.stream} lost messages it had acknowledged (${what}; the last stored before was ${stored}): the session's commits after that are not in the stream`, { reason: 'StreamLost' });
  }

  /**
   * Whether the stream is gone (deleted under the writer: `nats stream rm`); a look that fails
   * otherwise (a server down, a leader being elected) says nothing (false). Its messages were
   * refused ("jetstream is not enabled", the subject having no stream) and retried for ever,
   * without an 'error' (metrics().lastError only) and without the stream coming back: the
   * commits after it went nowhere, silently, until 64 MiB of them passed the lag bound. Taken
   * as StreamLost, the publisher begins a new session, which creates the stream again.
   * Asked with the quick API timeout (1 s): the look follows every failed publish, and with the
   * server down or a leader being elected the client's 5 s timeout held each retry 5 s longer
   * (a server killed and restarted: its first retry came 7 s after the kill, the commits queued
   * meanwhile published that much later); a look that times out says nothing, as before.
   */
  async #streamGone(): Promise<boolean> {
    try {
      await this.link.quick.jsm.streams.info(this.stream);
      return false;
    } catch (e) {
      return /not found/i.test((e as Error).message);
    }
  }

  /**
   * A publish the stream answered with a refusal (a JetStream API error: "maximum bytes
   * exceeded" from a full stream with discard new, "message size exceeds maximum allowed") is
   * retried as any failure, and told (WALNUT_IO reason PublishRefused, the server's answer) at
   * the first refusal and about every REFUSED_TELL_MS while it lasts, as an unreachable server
   * is (nats.ts connectNats). It was retried without a word (metrics().lastError only): the
   * replication stalled, silently, until stop() said StopTimeout. Timeouts and lost
   * connections (a server restarting) are not refusals.
   */
  #tellRefused(error: Error): void {
    if (error?.name !== 'JetStreamApiError') return;
    const now = performance.now();
    if (this.#toldRefusedAt !== null && now - this.#toldRefusedAt < REFUSED_TELL_MS) return;
    this.#toldRefusedAt = now;
    this.onRefused(walnutError('WALNUT_IO', `the JetStream stream ${this.stream} refuses a message (${error.message}); retrying: nothing after it is published meanwhile`, { reason: 'PublishRefused', cause: error }));
  }

  #count(r: { seq: number; duplicate: boolean }, p: Pending): void {
    this.stats.messages++;
    this.stats.bytesPublished += p.bytes;
    if (r.duplicate) this.stats.duplicates++;
  }

  /** Sends pending messages while there is room and what they wait for is stored. */
  #sendMore(): void {
    while (this.#sent < this.#pending.length && this.#sent < this.maxInFlight) {
      const p = this.#pending[this.#sent]!;
      const after = p.msg.after;
      if (after !== null && after.seq === undefined) break;
      const expect: Expect = this.#sent === 0 ? this.#chain : { lastMsgID: this.#pending[this.#sent - 1]!.msg.msgId };
      p.result = this.#send(p, expect, after?.seq ?? 0);
      this.#sent++;
    }
    this.stats.inFlight = this.#sent;
    if (this.#sent > this.stats.peakInFlight) this.stats.peakInFlight = this.#sent;
  }

  #send(p: Pending, expect: Expect, afterSeq: number): Promise<Result> {
    const msg = p.msg;
    const sentAt = performance.now();
    msg.sentAt = sentAt;
    msg.storedAt = undefined;
    const body = msg.body();
    p.bytes = body.length;
    const h = this.link.headers();
    for (const [k, v] of Object.entries(msg.headers(afterSeq))) h.set(k, v);
    return this.link.js.publish(msg.subject, body, { msgID: msg.msgId, headers: h, expect, timeout: this.timeoutMs }).then(
      (ack): Result => {
        if (msg.sentAt === sentAt) msg.storedAt = performance.now(); // not an earlier send's late answer
        return { ok: true, seq: ack.seq, duplicate: ack.duplicate };
      },
      (error: Error): Result => ({ ok: false, error }),
    );
  }

  /**
   * After "wrong last" with nothing proven: the stream's last message. One of the pending ones
   * (stored, its ack lost) proves it and those before it stored; else the chain re-anchors on
   * that sequence (see the header) and null is returned.
   */
  async #resync(): Promise<{ index: number; seq: number } | null> {
    const info = await this.link.jsm.streams.info(this.stream);
    const last = info.state.last_seq;
    const m = last > 0 ? await messageAt(this.link, this.stream, last) : null;
    const id = m?.header.get(HEADER_MSG_ID) ?? '';
    const index = id === '' ? -1 : this.#pending.findIndex((p) => p.msg.msgId === id);
    if (index >= 0) return { index, seq: last };
    const stored = 'lastMsgID' in this.#chain ? this.#chain.lastMsgID : null;
    // a message of this writer's past its last stored one, that one still in its place: sent
    // before a drop() (an abandoned session's messages on the wire, stored once a paused server
    // went on) and stored after it, nothing lost: the chain goes on from there. Taken for a loss,
    // it said "lost messages it had acknowledged" (an 'error' StreamLost) and began one more
    // session, a base image more, for a stream that had lost nothing
    const droppedStoredLater =
      stored !== null && last > this.#lastStoredSeq && id !== '' && id !== stored && this.#sessions.has(sessionOf(id)) && (await messageAt(this.link, this.stream, this.#lastStoredSeq))?.header.get(HEADER_MSG_ID) === stored;
    if (!droppedStoredLater && stored !== null && (last < this.#lastStoredSeq || (id !== '' && id !== stored && this.#sessions.has(sessionOf(id))))) {
      // the stream ends before this writer's last stored message (or at an earlier one of its
      // own): the messages it had acknowledged after that point are gone (a cluster's new
      // leader that had not caught up, storage put back). Going on from there published over
      // the hole (and a message of an earlier session of the primary there was taken for
      // another primary's); the caller begins a new session (a base image) on the chain
      // re-anchored here, nothing pending sent again
      this.#lost(last, `it ends at sequence ${last}${id === '' ? '' : ` (${id})`}, before ${stored}`);
    }
    if ('lastMsgID' in this.#chain && id !== '' && !this.#sessions.has(sessionOf(id))) {
      throw walnutError('WALNUT_CONFLICT', `another walnut primary (session ${sessionOf(id)}) publishes to the JetStream stream ${this.stream} after this one: a stream takes one primary; replication stopped`, { reason: 'OtherPrimary' });
    }
    this.#chain = { lastSequence: last };
    this.stats.resyncs++;
    return null;
  }
}
