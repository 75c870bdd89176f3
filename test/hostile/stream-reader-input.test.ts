// WalStreamReader's static readers and StreamMagic.recognize took what they were given:
// from(undefined) / from(5) threw raw TypeErrors ("source is not async iterable"), a chunk that
// is no bytes (a number, an object) was read as no bytes at all, so from(['ARKHEXP1', 5]) was a
// clean empty stream; fromBuffer('...') threw "chunk.subarray is not a function", fromFile(5)
// "file.readLent is not a function", recognize(undefined) "reading 'length'". Now the readers
// refuse such input with WALNUT_INVALID_ARGUMENT (reason source / chunk / bytes / file /
// release / options / readBytes) and recognize() says null for anything but its 8 bytes.
import { describe, expect, it } from 'vitest';

import { StreamMagic, WalnutError, WalStreamReader } from '../../lib/index';

async function reasonOf(read: () => AsyncIterable<unknown> | Iterable<unknown>): Promise<string | undefined> {
  try {
    for await (const _ of read()) void _;
  } catch (e) {
    expect(e).toBeInstanceOf(WalnutError);
    expect((e as WalnutError).code).toBe('WALNUT_INVALID_ARGUMENT');
    return (e as WalnutError).reason;
  }
  throw new Error('not refused');
}

const magic = Buffer.from('ARKHEXP1');

describe('WalStreamReader and StreamMagic given what is no stream', () => {
  it('from() refuses a source that is not iterable and chunks that are not bytes', async () => {
    const from = WalStreamReader.from as (s: unknown) => AsyncIterable<unknown>;
    for (const bad of [undefined, null, 5, 'ARKHEXP1', {}]) expect(await reasonOf(() => from(bad))).toBe('source');
    for (const chunk of [5, {}, null, [1, 2]]) expect(await reasonOf(() => from([magic, chunk]))).toBe('chunk');
    const records: unknown[] = [];
    for await (const r of WalStreamReader.from([magic, ''] as never)) records.push(r);
    expect(records).toEqual([]);
  });

  it('fromBuffer() and fromFile() refuse what they cannot read', async () => {
    const fromBuffer = WalStreamReader.fromBuffer as (b: unknown) => Iterable<unknown>;
    for (const bad of [undefined, null, 5, 'ARKHEXP1', [65]]) expect(await reasonOf(() => fromBuffer(bad))).toBe('bytes');
    expect([...WalStreamReader.fromBuffer(new DataView(magic.buffer, magic.byteOffset, 8) as unknown as Uint8Array)]).toEqual([]);
    const fromFile = WalStreamReader.fromFile as (...a: unknown[]) => AsyncIterable<unknown>;
    expect(await reasonOf(() => fromFile(5, async () => undefined))).toBe('file');
    expect(await reasonOf(() => fromFile(null, async () => undefined))).toBe('file');
  });

  it('recognize() is null for anything but the 8 magic bytes', () => {
    const recognize = StreamMagic.recognize as (b: unknown) => StreamMagic | null;
    for (const bad of [undefined, null, 5, 'ARKHEXP1', {}, [65, 82, 75, 72, 69, 88, 80, 49]]) expect(recognize(bad)).toBeNull();
    expect(recognize(magic)).toBe(StreamMagic.V1);
  });
});
