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
