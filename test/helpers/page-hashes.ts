// The pages of a store's newest state as hashes, or as their bytes: two databases compared page
// for page (a replica against its primary, a restore against its source).
import { xxh3_128 } from '../../lib/checksum';
import type { Store } from '../../lib/commit/store';

/** The xxh3-128 of every page of the store's newest state, in hex. */
export async function pageHashes(store: Store): Promise<string[]> {
  const snap = await store.snapshot();
  try {
    return Array.from({ length: snap.dbSize }, (_, k) => xxh3_128(snap.readSync(k + 1)).toString(16));
  } finally {
    snap.release();
  }
}

/** Pages 1..dbSize of the store's newest state (raw: with their trailers), as one buffer. */
export async function pageBytes(store: Store): Promise<Buffer> {
  const snap = await store.snapshot();
  try {
    return Buffer.concat(Array.from({ length: snap.dbSize }, (_, k) => snap.readRawSync(k + 1)));
  } finally {
    snap.release();
  }
}
