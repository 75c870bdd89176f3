// What fault tests check over and over: no unhandled rejection escaped a test, and after a
// reopen the database holds exactly the pages whose commits were acknowledged.
import { afterAll, afterEach, beforeAll, expect } from 'vitest';

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
