// BufferedWalSink.appendFramed to a file: the framed records were written from the caller's
// buffer by the I/O thread after the call returned (writevLent), so a caller reusing the buffer
// meanwhile (while the lane is busy with an earlier write) put other bytes in the stream than
// the lengths appendFramed had checked: a stream no reader can read. Now the sink copies
// unless the buffer is given `owned`: the stream holds the records as they were at the call.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { BufferedWalSink, WalnutFile, WalStreamReader } from '../../lib/index';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

function framed(payloads: Uint8Array[]): Uint8Array {
  const out = Buffer.alloc(payloads.reduce((n, p) => n + 8 + p.length, 0));
  let at = 0;
  for (const p of payloads) {
    out.writeUInt32BE(p.length, at + 4);
    out.set(p, at + 8);
    at += 8 + p.length;
  }
  return out;
}

describe('BufferedWalSink.appendFramed', () => {
  it('a buffer changed right after the call (the lane busy) does not change what is written', async () => {
    const slow = await WalnutFile.open(path.join(dir, 'slow'), { create: true });
    const file = await WalnutFile.open(path.join(dir, 'stream'), { create: true });
    const sink = new BufferedWalSink(file);
    const payloads = [Buffer.alloc(1000, 1), Buffer.alloc(3000, 2), Buffer.alloc(10, 3)];
    const buffer = framed(payloads);
    const busy = slow.writev([new Uint8Array(16 << 20).fill(1)], 0, 'full'); // ahead on the same lane
    const appended = sink.appendFramed(buffer, payloads.length);
    buffer.fill(0xff); // the caller's next use of its buffer
    await Promise.all([busy, appended]);
    await sink.flush();
    const bytes = Buffer.alloc(await file.size());
    await file.read(bytes, 0, bytes.length, 0);
    const read: Uint8Array[] = [];
    for await (const r of WalStreamReader.from([bytes])) read.push(Buffer.from(r));
    expect(read).toEqual(payloads);
    await slow.close();
    await file.close();
  });
});
