// BufferedWalSink (public: a caller's own export stream) sized a record by the payload's
// `length`, which the caller can make say anything (an own property, a subclass's getter), and
// then copied the payload's real bytes. A payload saying fewer bytes than it holds made the copy
// throw a raw RangeError; one saying more framed a record of that size whose tail was whatever
// the sink's reused blocks held (an earlier record's bytes went into the stream). appendFramed
// checked the records within `framed.length` and then copied all of `framed`: records past the
// checked ones went out unchecked. Now both use the typed array's own size: a record holds
// exactly the payload's bytes, and framed records are checked over every byte that is written.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { BufferedWalSink, WalnutFile, WalStreamReader } from '../../lib/index';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

function saying<T extends Uint8Array>(u: T, length: number): T {
  return Object.defineProperty(u, 'length', { value: length });
}

async function records(file: WalnutFile): Promise<Buffer[]> {
  const bytes = Buffer.alloc(await file.size());
  await file.read(bytes, 0, bytes.length, 0);
  const out: Buffer[] = [];
  for await (const r of WalStreamReader.from([bytes])) out.push(Buffer.from(r));
  return out;
}

describe('BufferedWalSink with a payload whose length is not its size', () => {
  it('appendRecord frames exactly the payload\'s bytes, whatever its length says', async () => {
    const file = await WalnutFile.open(path.join(dir, 'records'), { create: true, truncate: true });
    const sink = new BufferedWalSink(file);
    await sink.appendRecord(Buffer.alloc(5000, 0xee));
    await sink.flush(); // its block is reused for the next records
    await sink.appendRecord(saying(new Uint8Array(100).fill(0x11), 5000));
    await sink.appendRecord(saying(new Uint8Array(4000).fill(0x33), 16));
    await sink.flush();
    expect(await records(file)).toEqual([Buffer.alloc(5000, 0xee), Buffer.alloc(100, 0x11), Buffer.alloc(4000, 0x33)]);
    await file.close();
  });

  it('appendFramed checks every record it writes: more records than given is refused, nothing written', async () => {
    const file = await WalnutFile.open(path.join(dir, 'framed'), { create: true, truncate: true });
    const sink = new BufferedWalSink(file);
    const framed = Buffer.alloc(2 * (8 + 10));
    framed.writeUInt32BE(10, 4);
    framed.fill(1, 8, 18);
    framed.writeUInt32BE(10, 22);
    framed.fill(2, 26, 36);
    await expectRejectsWalnut(sink.appendFramed(saying(framed, 18), 1), 'WALNUT_INVALID_ARGUMENT', { reason: 'framed' });
    expect(await file.size()).toBe(0);
    const fresh = new BufferedWalSink(file);
    await fresh.appendFramed(framed, 2);
    await fresh.flush();
    expect(await records(file)).toEqual([Buffer.alloc(10, 1), Buffer.alloc(10, 2)]);
    await file.close();
  });
});
