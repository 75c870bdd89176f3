// The fault-injection hook: inert by default, and when armed it makes exactly the Nth write or
// sync fail (or write short) with the chosen errno, mapped to the right WalnutError code.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { HELPERS, runNode } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const child = path.join(HELPERS, 'fault-child.js');
const ARMED = { WALNUT_FAULT_INJECTION: '1' };

async function run(scenario: string, env: Record<string, string> = ARMED) {
  const r = await runNode(child, [path.join(dir, `${scenario}.bin`), scenario], env);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

describe('fault injection', () => {
  it('is inert unless WALNUT_FAULT_INJECTION=1', async () => {
    const r = await run('unarmed', { WALNUT_FAULT_INJECTION: '' });
    expect(r.armed).toBe(false);
    expect(r.set).toMatchObject({ ok: false, code: 'WALNUT_INVALID_ARGUMENT' });
    expect(r.write).toEqual({ ok: true });
  });

  it('fails exactly the Nth write with the errno as WALNUT_IO', async () => {
    const r = await run('failWrite');
    expect(r.armed).toBe(true);
    expect(r.first).toEqual({ ok: true });
    expect(r.second).toMatchObject({ ok: false, code: 'WALNUT_IO', errno: 5, walnut: 'WalnutError' });
    expect(r.third).toEqual({ ok: true });
  });

  it('makes a write short and reports ENOSPC as WALNUT_FULL', async () => {
    const r = await run('shortWrite');
    expect(r.first).toMatchObject({ ok: false, code: 'WALNUT_FULL', errno: 28 });
    expect(r.size).toBe(4096); // half of the two pages reached the file
  });

  it('fails the Nth sync (async path) and only that one', async () => {
    const r = await run('failSync');
    expect(r.first).toMatchObject({ ok: false, code: 'WALNUT_IO', errno: 5, syscall: 'fdatasync' });
    expect(r.second).toEqual({ ok: true });
    expect(r.writevSync).toMatchObject({ ok: false, code: 'WALNUT_FULL', errno: 28, syscall: 'fdatasync' });
  });

  it('a failed WAL append advances nothing and the next append overwrites its offset', async () => {
    const r = await run('walAppend');
    expect(r.failed).toMatchObject({ ok: false, code: 'WALNUT_FULL', errno: 28 });
    expect(r.mxAfterFailure).toBe(1);
    expect(r.syncFailed).toMatchObject({ ok: false, code: 'WALNUT_IO', syscall: 'fdatasync' });
    expect(r.mxAfterSyncFailure).toBe(1);
    expect(r.next).toEqual({ ok: true });
    expect(r.mxFinal).toBe(2);
    expect(r.recovered).toEqual({ mxFrame: 2, dbSize: 2, pgnos: [1, 2] });
  });
});
