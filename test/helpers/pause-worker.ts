// A worker thread paused for real, through this process's own inspector (the NodeWorker domain,
// as a debugger attaches to a worker, then Debugger.pause): its JavaScript stops where it is,
// its messages wait, its timers do not fire, until resume(). Nothing of the code under test is
// replaced: the replication worker starved of CPU, on demand and for as long as a test wants.
// One inspector session serves the process (a second one's NodeWorker.enable attached to no
// worker: measured, every pause after the first test's timed out).
import * as inspector from 'node:inspector';
import type { Worker } from 'node:worker_threads';

export interface PausedWorker {
  /** Resolves once the worker is paused (its next JavaScript: its timers run every 50 ms). */
  readonly paused: Promise<void>;
  /** Lets it run again; resolves once it does (at once when it is not paused). */
  resume(): Promise<void>;
  /** Resumes it and stops its debugger. */
  detach(): Promise<void>;
}

interface Attached {
  sessionId: string;
  /** Debugger.paused / Debugger.resumed from this worker. */
  onEvent: ((method: string) => void) | null;
}

interface Inspecting {
  session: inspector.Session | null;
  /** Workers the session attached to, by thread id; waiters for those not attached yet. */
  attached: Map<string, Attached>;
  waiting: Map<string, (a: Attached) => void>;
  ids: number;
}

/**
 * The process's one session and what it knows, kept on globalThis: test files that share a fork
 * (vitest's isolate: false) load this module again each, and a module-level session per load
 * was a second session (see the header).
 */
const inspecting: Inspecting = ((globalThis as { [k: symbol]: Inspecting })[Symbol.for('walnut.test.pauseWorker')] ??= { session: null, attached: new Map(), waiting: new Map(), ids: 0 });
const { attached, waiting } = inspecting;

function post<T>(method: string, params: object = {}): Promise<T> {
  return new Promise((resolve, reject) => inspecting.session!.post(method, params, (e, r) => (e ? reject(e) : resolve(r as T))));
}

async function inspectorSession(): Promise<void> {
  if (inspecting.session !== null) return;
  const session = (inspecting.session = new inspector.Session());
  session.connect();
  session.on('NodeWorker.attachedToWorker', (m: { params: { sessionId: string; workerInfo: { workerId: string; title: string } } }) => {
    const a: Attached = { sessionId: m.params.sessionId, onEvent: null };
    // by its thread id, which the title carries ("[worker 7]", "[worker 7] name"): the
    // inspector's workerId is a count of its own, equal to the thread id only while no worker
    // ended before the session began (a fork that ran other files: one ended, and the next
    // worker was thread 2 and inspector worker 1)
    const id = /^\[worker (\d+)\]/.exec(m.params.workerInfo.title)?.[1] ?? m.params.workerInfo.workerId;
    attached.set(id, a);
    waiting.get(id)?.(a);
  });
  session.on('NodeWorker.detachedFromWorker', (m: { params: { sessionId: string } }) => {
    for (const [id, a] of attached) if (a.sessionId === m.params.sessionId) attached.delete(id);
  });
  session.on('NodeWorker.receivedMessageFromWorker', (m: { params: { sessionId: string; message: string } }) => {
    const method = (JSON.parse(m.params.message) as { method?: string }).method;
    if (method === undefined) return;
    for (const a of attached.values()) if (a.sessionId === m.params.sessionId) a.onEvent?.(method);
  });
  await post('NodeWorker.enable', { waitForDebuggerOnStart: false });
}

export async function pauseWorker(worker: Worker): Promise<PausedWorker> {
  await inspectorSession();
  const id = String(worker.threadId);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const a =
    attached.get(id) ??
    (await Promise.race([
      new Promise<Attached>((resolve) => waiting.set(id, resolve)),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the inspector did not attach to worker ${id}`)), 10_000))),
    ]).finally(() => {
      clearTimeout(timer);
      waiting.delete(id);
    }));
  const send = (method: string): Promise<unknown> => post('NodeWorker.sendMessageToWorker', { sessionId: a.sessionId, message: JSON.stringify({ id: ++inspecting.ids, method, params: {} }) });
  let isPaused = false;
  let onPaused: () => void = () => undefined;
  let onResumed: () => void = () => undefined;
  a.onEvent = (method) => {
    if (method === 'Debugger.paused') {
      isPaused = true;
      onPaused();
    } else if (method === 'Debugger.resumed') {
      isPaused = false;
      onResumed();
    }
  };
  const paused = new Promise<void>((resolve) => (onPaused = resolve));
  await send('Debugger.enable');
  await send('Debugger.pause');
  const resume = async (): Promise<void> => {
    if (!isPaused || !attached.has(id)) return;
    const resumed = new Promise<void>((resolve) => (onResumed = resolve));
    await send('Debugger.resume');
    await resumed;
  };
  return {
    paused,
    resume,
    async detach() {
      await resume().catch(() => undefined);
      if (attached.has(id)) await send('Debugger.disable').catch(() => undefined);
      a.onEvent = null;
    },
  };
}
