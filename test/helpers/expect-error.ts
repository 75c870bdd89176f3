// Assertions on WalnutError: the class, the stable code, and selected fields.
import { expect } from 'vitest';
import { WalnutError, type WalnutErrorCode } from '../../lib/errors';

function check(caught: unknown, code: WalnutErrorCode, fields: Record<string, unknown>): WalnutError {
  expect(caught, `expected ${code}`).toBeInstanceOf(WalnutError);
  const err = caught as WalnutError;
  expect(err.code).toBe(code);
  for (const [k, v] of Object.entries(fields)) expect((err as unknown as Record<string, unknown>)[k]).toEqual(v);
  return err;
}

export function expectWalnutError(fn: () => unknown, code: WalnutErrorCode, fields: Record<string, unknown> = {}): WalnutError {
  try {
    fn();
  } catch (e) {
    return check(e, code, fields);
  }
  return check(undefined, code, fields);
}

export async function expectRejectsWalnut(p: Promise<unknown>, code: WalnutErrorCode, fields: Record<string, unknown> = {}): Promise<WalnutError> {
  try {
    await p;
  } catch (e) {
    return check(e, code, fields);
  }
  return check(undefined, code, fields);
}

/** The reason of the WALNUT_INVALID_ARGUMENT `fn` throws (fails the test when it throws nothing or anything else). */
export function invalidArgumentReason(fn: () => unknown): string | undefined {
  return expectWalnutError(fn, 'WALNUT_INVALID_ARGUMENT').reason;
}
