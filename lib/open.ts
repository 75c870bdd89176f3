/**
 * open.ts — the public open(): a store (commit/) with the extensions its options ask for (the
 * FEC sidecar, fec/), wired here because commit/ sits below fec/ in the layering.
 */
import { refuseExtraArguments } from './arguments';
import { resolveOptions, type OpenOptions } from './commit/options';
import { open as openStore, type Store } from './commit/store';
import { fecExtension } from './fec/extension';

export function open(file: string, options?: OpenOptions): Promise<Store> {
  try {
    if (arguments.length > 2) refuseExtraArguments('open', 'a path and options', 2, arguments);
    return openStore(file, options, fecExtension(resolveOptions(options).fec));
  } catch (e) {
    return Promise.reject(e);
  }
}
