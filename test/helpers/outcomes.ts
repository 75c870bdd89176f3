// What fault tests check over and over: no unhandled rejection escaped a test, after a reopen
// the database holds exactly the pages whose commits were acknowledged, and (close races) how
// each call settled, within a hang guard.
import { afterAll, afterEach, beforeAll, expect } from 'vitest';

import { WalnutError } from '../../lib/errors';
import { open } from '../../lib/index';

/** Registers hooks: after each test of the file, no 'unhandledRejection' was reported. */
export function expectNoUnhandledRejections(): void {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => void unhandled.push(e);
  beforeAll(() => void process.on('unhandledRejection', onUnhandled));
  afterAll(() => void process.off('unhandledRejection', onUnhandled));
  afterEach(async () => {
    await new Promise((resolve) => setTimeout(resolve, 5)); // rejections are reported after the turn
    expect(unhandled.splice(0)).toEqual([]);
  });
}

/**
 * Reopens `db`: each page of `first..last` holds, at byte 100, the value of its acknowledged
 * commit (`acknowledged`: { pgno, v }, the last one per page wins), else 0.
 */
export async function expectAcknowledgedPages(db: string, acknowledged: readonly { pgno: number; v: number }[], first: number, last: number): Promise<void> {
  const store = await open(db);
  const snap = await store.snapshot();
  try {
    const acked = new Map<number, number>(acknowledged.map((a) => [a.pgno, a.v]));
    for (let pgno = first; pgno <= last; pgno++) expect((await snap.read(pgno))[100], `page ${pgno}`).toBe(acked.get(pgno) ?? 0);
  } finally {
    snap.release();
    await store.close();
  }
}

/** How a call settled: its value, or its rejection's code and whether it was a WalnutError. */
export type Outcome = { ok: true; value: unknown } | { ok: false; code: string | undefined; walnut: boolean; message: string };

/** `p` settled as an Outcome (never rejects). */
export function outcomeOf(p: Promise<unknown>): Promise<Outcome> {
  return p.then(
    (value): Outcome => ({ ok: true, value }),
    (e): Outcome => ({ ok: false, code: (e as { code?: string }).code, walnut: e instanceof WalnutError, message: String((e as Error)?.message) }),
  );
}

/** Settles `p` as an Outcome, or rejects (failing the test) when it has not settled within `hangMs`. */
export function settle(p: Promise<unknown>, what: string, hangMs = 10_000): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${hangMs} ms`)), hangMs);
  });
  return Promise.race([outcomeOf(p), hang]).finally(() => clearTimeout(timer));
}

/** Runs `f` as a promise: a synchronous throw becomes its rejection. */
export function call(f: () => unknown): Promise<unknown> {
  try {
    return Promise.resolve(f());
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Where a close race calls close() relative to the verb it races: first in the same tick
 * ('before'), right after the verb in the same tick (null), or after the wait given.
 */
export const CLOSE_INTERLEAVINGS: ReadonlyArray<[string, (() => Promise<void>) | 'before' | null]> = [
  ['close() first, same tick', 'before'],
  ['same tick, after the verb', null],
  ['after 3 microtasks', async () => { for (let i = 0; i < 3; i++) await Promise.resolve(); }],
  ['after setImmediate', () => new Promise((r) => setImmediate(r))],
  ['after 3 setImmediates', async () => { for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r)); }],
  ['after 5 ms', () => new Promise((r) => setTimeout(r, 5))],
];

/** A verb and close() started in some order, both settled (hang guard): [the verb's outcome, close()'s]. */
export type CloseRace = (verb: () => Promise<unknown>, close: () => Promise<unknown>) => Promise<[Outcome, Outcome]>;

/**
 * CLOSE_INTERLEAVINGS as CloseRaces, named; then, for each of `intoCloseMs`, close() first and
 * the verb that many milliseconds into it (0: after one setImmediate), while close() may still
 * be checkpointing or closing connections. Every outcome is settled as soon as its call is made.
 */
export function closeRaces(intoCloseMs: readonly number[] = []): [string, CloseRace][] {
  const interleaved = CLOSE_INTERLEAVINGS.map(([name, when]): [string, CloseRace] => [
    name,
    async (verb, close) => {
      if (when === 'before') {
        const c = settle(close(), `close() (${name})`);
        return [await settle(verb(), name), await c];
      }
      const v = settle(verb(), name);
      if (when !== null) await when();
      return [await v, await settle(close(), `close() (${name})`)];
    },
  ]);
  const intoClose = intoCloseMs.map((ms): [string, CloseRace] => [
    `${ms} ms into close()`,
    async (verb, close) => {
      const c = settle(close(), `close() (${ms} ms)`);
      await new Promise((r) => (ms === 0 ? setImmediate(r) : setTimeout(r, ms)));
      return [await settle(verb(), `${ms} ms into close()`), await c];
    },
  ]);
  return [...interleaved, ...intoClose];
}
