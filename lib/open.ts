/**
 * open.ts — the public open(): a store (commit/) with the extensions its options ask for (the
 * FEC sidecar, fec/), wired here because commit/ sits below fec/ in the layering; and
 * openCuttable(), the same for the replication worker, whose open the store's close() may cut;
 * openReadOnlyAs(), a read-only one for walnut/sql, its refusals saying walnut/sql's reason.
 */
import { refuseExtraArguments } from './arguments';
import { resolveOptions, type OpenOptions } from './commit/options';
import { open as openStore, type Store } from './commit/store';
import type { ReadOnly } from './commit/read-only';
import { fecExtension } from './fec/extension';
import type { LockWaitCut } from './wal-index/wal-index';

/**
 * open() whose waits for other connections' locks `cut` ends from outside, from before the store
 * exists (WalIndex LockWaitCut: the replication worker's connection, replicate/worker.ts). Not
 * public (index.ts exports open() only).
 */
export function openCuttable(file: string, options: OpenOptions, cut: LockWaitCut): Promise<Store> {
  try {
    return openStore(file, options, fecExtension(resolveOptions(options).fec), cut);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * open() with readOnly: true, whose refused writes give `readOnly`'s reason (walnut/sql: its
 * readOnly, a replica's file). Not public.
 */
export function openReadOnlyAs(file: string, options: OpenOptions, readOnly: ReadOnly): Promise<Store> {
  try {
    const o = { ...options, readOnly: true };
    return openStore(file, o, fecExtension(resolveOptions(o).fec), undefined, readOnly);
  } catch (e) {
    return Promise.reject(e);
  }
}

export function open(file: string, options?: OpenOptions): Promise<Store> {
  try {
    if (arguments.length > 2) refuseExtraArguments('open', 'a path and options', 2, arguments);
    return openStore(file, options, fecExtension(resolveOptions(options).fec));
  } catch (e) {
    return Promise.reject(e);
  }
}
