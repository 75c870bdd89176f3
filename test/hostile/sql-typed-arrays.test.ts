// Any ArrayBufferView binds as a blob of the bytes it views, as better-sqlite3 binds it (a
// Float32Array of an embedding, a DataView, an Int16Array): walnut/sql took only Uint8Array and
// refused the others (WALNUT_INVALID_ARGUMENT), also as the single value of a one-parameter
// statement. Compared with better-sqlite3: the bytes stored, views with a byteOffset included.
import * as path from 'node:path';

import Database from 'better-sqlite3';
import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

test('TypedArrays and DataViews bind as blobs of their bytes, as better-sqlite3 binds them', async () => {
  const db = await openDatabase(path.join(tmpDir(), 'typed-arrays.db'));
  const native = new Database(':memory:');
  try {
    const buffer = new ArrayBuffer(32);
    new Uint8Array(buffer).forEach((_, i, a) => (a[i] = i * 7 + 1));
    const views: ArrayBufferView[] = [
      new Float32Array([1.5, -2.25, 3e10]),
      new Float64Array(buffer, 8, 2),
      new Int16Array(buffer, 2, 5),
      new Uint32Array(0),
      new BigInt64Array([-1n, 2n ** 62n]),
      new DataView(buffer, 3, 9),
      new Uint8ClampedArray([0, 255, 128]),
    ];
    const got: unknown[] = [];
    const expected: unknown[] = [];
    for (const view of views) {
      got.push(await db.get('SELECT typeof(?) AS type, hex(?) AS hex', [view as never, view as never]));
      got.push(await db.get('SELECT hex(?) AS hex', view as never));
      got.push(await db.get('SELECT hex(:v) AS hex', { v: view as never }));
      expected.push(native.prepare('SELECT typeof(?) AS type, hex(?) AS hex').get([view, view]));
      expected.push(native.prepare('SELECT hex(?) AS hex').get(view));
      expected.push(native.prepare('SELECT hex(:v) AS hex').get({ v: view }));
    }
    expect(got).toEqual(expected);
    // a view of a detached buffer is still refused
    const detached = new ArrayBuffer(8);
    const view = new Float32Array(detached, 4, 1);
    structuredClone(detached, { transfer: [detached] });
    await expectRejectsWalnut(db.get('SELECT ? AS v', [view as never]), 'WALNUT_INVALID_ARGUMENT', { reason: 'params' });
  } finally {
    native.close();
    await db.close();
  }
});

test("a view binds the bytes it really views, whatever its own byteLength/byteOffset properties say; a cross-realm Uint8Array binds; a detached DataView or Uint8Array and a Proxy of a view are refused", async () => {
  const db = await openDatabase(path.join(tmpDir(), 'typed-arrays-lying.db'));
  const hex = (v: unknown): Promise<unknown> => db.get('SELECT hex(?) AS hex', [v as never]);
  try {
    const bytes = new Uint8Array(8).map((_, i) => i + 1);
    const dv = new DataView(bytes.buffer, 2, 2);
    Object.defineProperty(dv, 'byteLength', { value: 8 });
    Object.defineProperty(dv, 'byteOffset', { value: 0 });
    expect(await hex(dv)).toEqual({ hex: '0304' });
    const f32 = new Float32Array([1.5]);
    Object.defineProperty(f32, 'byteLength', { value: 1000 });
    expect(await hex(f32)).toEqual({ hex: '0000C03F' });
    const { runInNewContext } = await import('node:vm');
    expect(await hex(runInNewContext('new Uint8Array([9, 8, 7])'))).toEqual({ hex: '090807' });
    for (const make of [() => new DataView(new ArrayBuffer(4)), () => new Uint8Array(4)]) {
      const v = make();
      structuredClone(v.buffer, { transfer: [v.buffer] });
      await expectRejectsWalnut(hex(v), 'WALNUT_INVALID_ARGUMENT', { reason: 'params' });
    }
    await expectRejectsWalnut(hex(new Proxy(new Float64Array(1), {})), 'WALNUT_INVALID_ARGUMENT', { reason: 'params' });
  } finally {
    await db.close();
  }
});
