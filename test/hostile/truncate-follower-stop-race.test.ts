// A WAL restart past the store's own follow export (WalIndex #restart: the follow pin's slot
// converted to exclusive, the frames the follower has not read handed over, an await of a WAL
// read) while that export's stop() ends: run()'s last flush settles during the hand-over read,
// then follower.stop() runs followWal's unregister, which unlocked the pin's slot under the
// restart and set #followPin = null. #restart's finally then converted a slot the connection no
// longer held: TypeError "Cannot set properties of undefined (setting 'mode')", and the other
// three read slots stayed locked exclusively for good (its unlock never ran).
//  - through checkpoint('truncate') (d1eedcd: a truncate beside the store's own follower
//    restarts the WAL this way): the checkpoint rejected with that TypeError; afterwards every
//    truncate was busy after the busy timeout, the WAL never restarted again (3,000 commits:
//    3,000 frames, 12 MB), and a sqlite3 reader failed SQLITE_PROTOCOL "locking protocol";
//  - through the store's own commit that restarts the WAL (after a checkpoint): WALNUT_FAILED
//    "the commit pipeline failed after writing to the WAL, before publishing (Cannot set
//    properties of undefined (setting 'mode')); the store stopped and must be reopened".
// Deterministic: the sink's last flush is released from inside the hand-over (the follower's
// position() is what #handOverToFollowers asks just before it reads).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';

import { open, type Store } from '../../lib/commit/store';
import { WalFollower } from '../../lib/export/follow';
import type { WalRecordSink } from '../../lib/export/framing';
import { restore } from '../../lib/export/restore';
import { SqlitePeer } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();
const PAGE = 4096;
function page(pgno: number, n: number): Buffer {
  const b = Buffer.alloc(PAGE);
  for (let i = 0; i < PAGE; i += 4) b.writeUInt32LE((pgno * 2654435761 + n * 40503 + i) >>> 0, i);
  return b;
}

/** The ARKHEXP1 stream of these records: magic, then u64 big-endian length and payload each. */
function frame(records: Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from('ARKHEXP1')];
  for (const r of records) {
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(r.length));
    parts.push(len, r);
  }
  return Buffer.concat(parts);
}

/**
 * An export stopping (its last flush held) while `restart` restarts the WAL past it, the flush
 * released from inside the hand-over; then the store must go on: commits, a WAL that restarts,
 * a truncate that is not busy, a sqlite3 reader. The stream holds the 50 commits before stop().
 */
async function stopDuringHandOver(name: string, restart: (store: Store) => Promise<unknown>): Promise<void> {
  const src = path.join(dir, `${name}.db`);
  const store = await open(src, { busyTimeout: 500, autoCheckpoint: 100 });
  const records: Buffer[] = [];
  let gate = false;
  const held: (() => void)[] = [];
  const sink: WalRecordSink = {
    appendRecord: async (r) => void records.push(Buffer.from(r)),
    flush: () => (gate ? new Promise<void>((resolve) => held.push(resolve)) : Promise.resolve()),
  };
  const handle = store.exportTo(sink, { follow: true, pollMs: 5 });
  let made = 0;
  const commit = () => store.commit([{ pgno: 2 + (made % 40), data: page(2 + (made % 40), made++) }]);
  const release = () => {
    gate = false;
    for (const resolve of held.splice(0)) resolve();
  };
  const position = WalFollower.prototype.position;
  let armed = false;
  const spy = vi.spyOn(WalFollower.prototype, 'position').mockImplementation(function (this: WalFollower) {
    if (armed) {
      armed = false;
      release();
    }
    return position.call(this);
  });
  const peer = new SqlitePeer(src);
  try {
    for (let i = 0; i < 50; i++) await commit();
    // (waited for, not slept: 100 ms and 50 ms are not enough on a loaded machine)
    await until(() => handle.behindBytes() === 0); // the export is caught up
    // stop() with nothing new to read: run()'s last pass finds nothing, its last flush waits at the gate
    const stopped = handle.stop();
    gate = true;
    await until(() => held.length > 0);
    expect(held.length).toBe(1);
    for (let i = 0; i < 20; i++) await commit(); // frames the stopping follower will not export
    armed = true;
    await restart(store);
    expect(armed).toBe(false); // the restart handed frames over (and the export's last flush settled meanwhile)
    await stopped;
    // the store goes on: its WAL restarts, a truncate is not busy, sqlite3 reads
    for (let i = 0; i < 300; i++) await commit();
    expect(store.metrics().walFrames).toBeLessThan(300);
    expect(await store.checkpoint('truncate')).toMatchObject({ busy: false, walFrames: 0 });
    await commit();
    expect(await peer.get('SELECT count(*) AS c FROM sqlite_master')).toEqual({ c: 0 });
  } finally {
    spy.mockRestore();
    release();
    await peer.close();
    await store.close();
  }
  const res = await restore(Readable.from([frame(records)]), path.join(dir, `${name}-restored.db`));
  expect(res.stoppedBy).toBeNull();
  expect(res.lastCommitSeq).toBe(50);
}

describe("a WAL restart past the store's own follow export while that export stops", () => {
  it("checkpoint('truncate'): not busy, no TypeError, no read slot left locked", async () => {
    await stopDuringHandOver('truncate', async (store) => {
      expect(await store.checkpoint('truncate')).toMatchObject({ busy: false, walFrames: 0 });
    });
  });

  it("the store's own commit that restarts the WAL: it succeeds, the store goes on", async () => {
    await stopDuringHandOver('commit', async (store) => {
      expect(await store.checkpoint('passive')).toMatchObject({ busy: false });
      await store.commit([{ pgno: 2, data: page(2, 1_000_000) }]);
    });
  });
});
