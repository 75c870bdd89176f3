// walnut/sql bound a blob parameter through wa-sqlite's bind_blob, which allocates
// `value.byteLength` bytes in the wasm heap and copies the whole typed array there. A
// Uint8Array whose byteLength reads smaller than its bytes (an own `byteLength` property, a
// subclass's getter) overflowed that allocation into SQLite's heap: the statement died with a
// raw RuntimeError (memory access out of bounds) or SQLITE_MISUSE, every later statement of the
// connection with the RuntimeError, and close() failed with a raw SQLiteError (unfinalized
// statements). Now a blob is bound as the typed array's own bytes, whatever a property says
// (better-sqlite3 binds a Buffer's real length too): the row holds them, the connection goes on
// and closes, and the file passes integrity_check in SQLite. A Proxy of a Uint8Array is refused
// (WALNUT_INVALID_ARGUMENT, params) instead of meeting the caller's traps inside the bind.
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

class LongerThanSaid extends Uint8Array {
  override get byteLength(): number {
    return 100_000;
  }
}

describe('walnut/sql: a blob parameter whose byteLength is not its size', () => {
  it('is bound as its own bytes; the connection goes on, closes, and the file is sound', async () => {
    const file = path.join(dir, 'blob.db');
    const db = await openDatabase(file, { readConnections: 0 });
    await db.exec('CREATE TABLE t(k TEXT PRIMARY KEY, b BLOB)');
    const said8 = new Uint8Array(4096).fill(0x41);
    Object.defineProperty(said8, 'byteLength', { value: 8 });
    const said0 = new Uint8Array(64).fill(0x43);
    Object.defineProperty(said0, 'byteLength', { value: 0 });
    const longer = new LongerThanSaid(16).fill(0x42);
    for (const [k, b] of [['said8', said8], ['said0', said0], ['longer', longer]] as const) {
      await db.run('INSERT INTO t VALUES (?, ?)', [k, b]);
    }
    // a Proxy of one is no blob (its traps are the caller's code): refused, nothing inserted
    await expectRejectsWalnut(db.run('INSERT INTO t VALUES (?, ?)', ['proxy', new Proxy(new Uint8Array(4), {})]), 'WALNUT_INVALID_ARGUMENT', { reason: 'params' });
    const rows = await db.all('SELECT k, length(b) AS n, b FROM t ORDER BY k');
    expect(rows.map((r) => [r.k, r.n])).toEqual([['longer', 16], ['said0', 64], ['said8', 4096]]);
    expect(Buffer.from(rows[2]!.b as Uint8Array).equals(Buffer.alloc(4096, 0x41))).toBe(true);
    expect(await db.all('PRAGMA integrity_check')).toEqual([{ integrity_check: 'ok' }]);
    await db.close();
    const check = new Database(file, { readonly: true });
    try {
      expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(check.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 3 });
    } finally {
      check.close();
    }
  });
});
