// WalnutFile's async read/write/writev with a buffer whose ArrayBuffer is transferred (and
// collected) while the operation waits on the I/O lane behind a slow one. Before: the I/O
// thread wrote from freed memory (ASan: heap-use-after-free in pwritev's read_iovec) or read
// into it. Now writes copy the bytes when called (the file gets them as they were), and a read
// copies into the caller's buffer only once done: into a detached one it fails,
// WALNUT_INVALID_ARGUMENT reason Detached, having touched nothing. Run under ASan too
// (npm run test:asan).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { WalnutFile } from '../../lib/io/file';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const BIG = new Uint8Array(16 << 20).fill(1);

let slow: WalnutFile;
beforeAll(async () => {
  slow = await WalnutFile.open(path.join(dir, 'slow'), { create: true });
});
afterAll(async () => {
  await slow.close();
});

/** Starts `op` while the I/O lane is busy, transfers `buffer` away, collects it, takes the freed memory again. */
async function transferredMidOp<T>(buffer: Uint8Array, op: () => Promise<T>): Promise<PromiseSettledResult<T>> {
  const busy = slow.writev([BIG], 0, 'full');
  const settled = Promise.allSettled([op()]); // handled at once: a read that fails does so while we wait
  structuredClone(buffer, { transfer: [buffer.buffer as ArrayBuffer] });
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  const reuse = Array.from({ length: 64 }, () => new Uint8Array(4096).fill(0x55));
  await busy;
  const [outcome] = await settled;
  expect(reuse.length).toBe(64);
  return outcome!;
}

describe('WalnutFile async I/O with a buffer transferred mid-operation', () => {
  it('write() and writev() write the bytes as they were when called', async () => {
    const file = path.join(dir, 'written');
    const f = await WalnutFile.open(file, { create: true });
    try {
      const one = new Uint8Array(4096).fill(0xee);
      expect(await transferredMidOp(one, () => f.write(one, 0, 4096, 0))).toEqual({ status: 'fulfilled', value: 4096 });
      const a = new Uint8Array(4096).fill(0xaa);
      const b = new Uint8Array(4096).fill(0xbb);
      expect(await transferredMidOp(a, () => f.writev([a, b], 4096, 'data'))).toEqual({ status: 'fulfilled', value: 8192 });
    } finally {
      await f.close();
    }
    const bytes = fs.readFileSync(file);
    expect(bytes.subarray(0, 4096).equals(Buffer.alloc(4096, 0xee))).toBe(true);
    expect(bytes.subarray(4096, 8192).equals(Buffer.alloc(4096, 0xaa))).toBe(true);
    expect(bytes.subarray(8192, 12288).equals(Buffer.alloc(4096, 0xbb))).toBe(true);
  });

  it('read() into a buffer transferred meanwhile fails WALNUT_INVALID_ARGUMENT (Detached) and writes nowhere; into a live one it reads at the offset asked', async () => {
    const file = path.join(dir, 'read');
    fs.writeFileSync(file, Buffer.alloc(8192, 0x77));
    const f = await WalnutFile.open(file);
    try {
      const into = new Uint8Array(4096);
      const outcome = await transferredMidOp(into, () => f.read(into, 0, 4096, 0));
      expect(outcome.status).toBe('rejected');
      await expectRejectsWalnut(Promise.reject((outcome as PromiseRejectedResult).reason), 'WALNUT_INVALID_ARGUMENT', { reason: 'Detached' });
      const live = new Uint8Array(4096);
      expect(await f.read(live, 1000, 100, 50)).toBe(100);
      expect(live.subarray(1000, 1100).every((x) => x === 0x77)).toBe(true);
      expect(live.subarray(0, 1000).every((x) => x === 0) && live.subarray(1100).every((x) => x === 0)).toBe(true);
    } finally {
      await f.close();
    }
  });
});
