// openExportOutput and refuseExportTarget (public: the CLI's `export -o` and stdout checks)
// took their arguments unchecked: openExportOutput(db) without a file threw node:path's raw
// TypeError, options null was WALNUT_CANTOPEN "Cannot read properties of null", a force that is
// not a boolean ({ force: 'no' }) replaced an existing file (truncated it), a misspelt option
// ({ forse: true }) and an extra argument were dropped without a word, a database path that is
// not one was WALNUT_CANTOPEN "cannot open database 123", and refuseExportTarget(db) without a
// target threw a raw TypeError. Now, as restore() and verify() do: WALNUT_INVALID_ARGUMENT
// (reason dbPath / file / options / force / target) before anything is opened or created.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, openExportOutput, refuseExportTarget, WalnutError } from '../../lib/index';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

function refusal(f: () => unknown): WalnutError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(WalnutError);
    return e as WalnutError;
  }
  throw new Error('not refused');
}

describe('openExportOutput / refuseExportTarget arguments', () => {
  it('are refused as WALNUT_INVALID_ARGUMENT, nothing created or replaced', async () => {
    const db = path.join(dir, 'app.db');
    const store = await open(db, { pageSize: 1024 });
    await store.commit([{ pgno: 2, data: Buffer.alloc(1024, 2) }]);
    await store.close();
    const existing = path.join(dir, 'existing.ark');
    fs.writeFileSync(existing, 'keep me');
    const fresh = path.join(dir, 'fresh.ark');
    const call = openExportOutput as (...a: unknown[]) => unknown;
    const cases: [unknown[], string][] = [
      [[db], 'file'],
      [[db, ''], 'file'],
      [[db, 5], 'file'],
      [[123, fresh], 'dbPath'],
      [[db, fresh, null], 'options'],
      [[db, fresh, 'force'], 'options'],
      [[db, fresh, { forse: true }], 'options'],
      [[db, fresh, {}, 1], 'options'],
      [[db, existing, { force: 'no' }], 'force'],
    ];
    for (const [args, reason] of cases) {
      const e = refusal(() => call(...args));
      expect(e.code, JSON.stringify(args)).toBe('WALNUT_INVALID_ARGUMENT');
      expect(e.reason, JSON.stringify(args)).toBe(reason);
    }
    expect(fs.readFileSync(existing, 'utf8')).toBe('keep me');
    expect(fs.existsSync(fresh)).toBe(false);
    const ret = refuseExportTarget as (...a: unknown[]) => unknown;
    for (const [args, reason] of [[[db], 'target'], [[db, null], 'target'], [[5, process.stdout], 'dbPath']] as [unknown[], string][]) {
      const e = refusal(() => ret(...args));
      expect(e.code).toBe('WALNUT_INVALID_ARGUMENT');
      expect(e.reason).toBe(reason);
    }
    // still works
    const out = openExportOutput(db, existing, { force: true }) as fs.WriteStream;
    out.destroy();
    expect(fs.readFileSync(existing, 'utf8')).toBe('');
    refuseExportTarget(db, process.stdout);
  });
});
