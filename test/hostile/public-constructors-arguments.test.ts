// Two public verbs took what they were given without a look: verifySnapshot({}, 1) — anything
// but a snapshot — threw a raw TypeError ("this[#snap].readRawSync is not a function"), and
// new BufferedWalSink() / new BufferedWalSink({}) threw "Cannot read properties of undefined
// (reading 'on')" / "target.on is not a function"; its options (bufferBytes 0 or -1, a position
// that is not a byte offset, a misspelt name) were used as given. Now: WALNUT_INVALID_ARGUMENT,
// reason snapshot / target / options / bufferBytes / position, before anything is done.
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';

import { BufferedWalSink, open, verifySnapshot } from '../../lib/index';
import { invalidArgumentReason } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('public constructors and verbs refuse what they cannot use', () => {
  it('verifySnapshot of something that is not a snapshot', async () => {
    for (const bad of [{}, null, undefined, 5, { readRawSync: () => null }]) {
      expect(invalidArgumentReason(() => verifySnapshot(bad as never, 1))).toBe('snapshot');
    }
    const store = await open(path.join(dir, 'a.db'), { pageSize: 1024 });
    const snap = store.trySnapshotSync();
    expect(snap).not.toBeNull();
    expect(verifySnapshot(snap!, 5).ok).toBe(true);
    snap!.release();
    await store.close();
  });

  it('BufferedWalSink of something that is not a Writable or WalnutFile, or with bad options', () => {
    const Sink = BufferedWalSink as unknown as new (...a: unknown[]) => BufferedWalSink;
    for (const bad of [undefined, null, {}, 5, 'out.ark']) expect(invalidArgumentReason(() => new Sink(bad))).toBe('target');
    const w = () => new Writable({ write: (_c, _e, cb) => cb() });
    expect(invalidArgumentReason(() => new Sink(w(), null))).toBe('options');
    expect(invalidArgumentReason(() => new Sink(w(), { bufferbytes: 10 }))).toBe('options');
    for (const b of [0, -1, 1.5, '4096']) expect(invalidArgumentReason(() => new Sink(w(), { bufferBytes: b }))).toBe('bufferBytes');
    for (const p of [-1, 0.5, '0']) expect(invalidArgumentReason(() => new Sink(w(), { position: p }))).toBe('position');
    expect(new Sink(w(), { bufferBytes: 4096 })).toBeInstanceOf(BufferedWalSink);
  });
});
