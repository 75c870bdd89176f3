// Assertions on WalnutError: the class, the stable code, and selected fields.
import { expect } from 'vitest';
import { WalnutError, type WalnutErrorCode } from '../../lib/errors';

export function expectWalnutError(fn: () => unknown, code: WalnutErrorCode, fields: Record<string, unknown> = {}): WalnutError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(WalnutError);
  const err = caught as WalnutError;
  expect(err.code).toBe(code);
  for (const [k, v] of Object.entries(fields)) expect((err as unknown as Record<string, unknown>)[k]).toEqual(v);
  return err;
}

export async function expectRejectsWalnut(p: Promise<unknown>, code: WalnutErrorCode, fields: Record<string, unknown> = {}): Promise<WalnutError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(WalnutError);
  const err = caught as WalnutError;
  expect(err.code).toBe(code);
  for (const [k, v] of Object.entries(fields)) expect((err as unknown as Record<string, unknown>)[k]).toEqual(v);
  return err;
}
