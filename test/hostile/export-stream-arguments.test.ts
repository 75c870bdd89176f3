// createExportStream and restoreFromNats checked their arguments late or not at all:
// createExportStream(123) returned a stream that then emitted WALNUT_CANTOPEN "cannot open
// database 123", a Symbol path a raw TypeError through 'error', options 123 / NaN were dropped
// and a misspelt option was reported only after the database had been opened; a busyTimeout of
// -1 or 'x' was used as given. restoreFromNats(Symbol()) rejected with a raw TypeError (the
// connection's name), and until 'abc' was found "before the earliest state" only after the
// stream had been read. Now both refuse with WALNUT_INVALID_ARGUMENT before anything is opened
// or connected: createExportStream throws, restoreFromNats rejects (no server is listening at
// the port given: a refusal that reached for it would be WALNUT_IO instead).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { createExportStream, open, restoreFromNats, WalnutError, WalStreamReader } from '../../lib/index';
import { invalidArgumentReason } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('createExportStream and restoreFromNats arguments', () => {
  it('createExportStream refuses them by throwing, before a stream or connection exists', async () => {
    const db = path.join(dir, 'a.db');
    const store = await open(db, { pageSize: 1024 });
    await store.commit([{ pgno: 2, data: Buffer.alloc(1024, 3) }]);
    await store.close();
    const call = createExportStream as (...a: unknown[]) => unknown;
    for (const p of [123, undefined, null, '', Symbol('p'), {}, 'a\0b']) expect(invalidArgumentReason(() => call(p))).toBe('dbPath');
    for (const o of [123, NaN, 'follow', [], true]) expect(invalidArgumentReason(() => call(db, o))).toBe('options');
    expect(invalidArgumentReason(() => call(db, { folow: true }))).toBe('options');
    expect(invalidArgumentReason(() => call(db, { follow: 'yes' }))).toBe('follow');
    for (const t of [-1, 'x', NaN, Infinity, 1.5]) expect(invalidArgumentReason(() => call(db, { busyTimeout: t }))).toBe('busyTimeout');
    expect(invalidArgumentReason(() => call(db, {}, () => undefined))).toBe('options');
    // no connection was made: the database has no companions (the last close removed them)
    expect(fs.existsSync(`${db}-wal`)).toBe(false);
    // what is right still exports
    const records: Uint8Array[] = [];
    for await (const r of WalStreamReader.from(createExportStream(db, { busyTimeout: 1000 }))) records.push(r);
    expect(records.length).toBeGreaterThan(0);
  });

  it('restoreFromNats refuses a bad path or option before it connects', async () => {
    const servers = 'nats://127.0.0.1:9'; // nothing listens: a refusal that connected first would be WALNUT_IO
    const call = restoreFromNats as (...a: unknown[]) => Promise<unknown>;
    const reason = async (p: Promise<unknown>) => {
      const e = await p.then(() => null, (err: unknown) => err);
      expect(e).toBeInstanceOf(WalnutError);
      expect((e as WalnutError).code).toBe('WALNUT_INVALID_ARGUMENT');
      return (e as WalnutError).reason;
    };
    const target = path.join(dir, 'r.db');
    for (const p of [Symbol('p'), 123, '', undefined]) expect(await reason(call(p, { servers, stream: 's' }))).toBe('dbPath');
    for (const u of ['abc', -1, NaN, new Date(NaN)]) expect(await reason(call(target, { servers, stream: 's', until: u }))).toBe('until');
    expect(await reason(call(target, { servers, stream: 's', force: 'yes' }))).toBe('force');
    expect(await reason(call(target, { servers, stream: 's' }, {}))).toBe('options');
    expect(fs.existsSync(target)).toBe(false);
  });
});
