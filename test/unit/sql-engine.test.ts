// walnut/sql's wasm callback imports (lib/sql/engine.ts): a callback target marked DIRECT (the
// VFS dispatcher) is called by the import itself, with exactly the arguments wa-sqlite's
// adapters_support would give it (an i64 as its two 32-bit halves); every other target, and the
// _async imports, go the package's way with exactly what wasm passed. Emscripten's two stack
// functions are found in the glue's text by their export names (engine.ts, resetStack).
import { describe, expect, it } from 'vitest';

import * as fs from 'node:fs';
import * as path from 'node:path';

import { DIRECT, stackExportNames, wrapCallbackImports } from '../../lib/sql/engine';
import { expectWalnutError } from '../helpers/expect-error';

describe('callback imports', () => {
  it('DIRECT targets are called straight away; other targets and other imports are untouched', () => {
    const slowCalls: unknown[][] = [];
    function _ipppip(...args: unknown[]): number {
      slowCalls.push(args);
      return 7;
    }
    function _ippppij(...args: unknown[]): number {
      slowCalls.push(args);
      return 8;
    }
    function _ipppip_async(): number {
      return 9;
    }
    function _fd_close(): number {
      return 10;
    }
    const directCalls: unknown[][] = [];
    const direct = Object.assign((...args: unknown[]) => (directCalls.push(args), 1), { [DIRECT]: true });
    const plain = (...args: unknown[]) => args.length;
    const targets = new Map<number, unknown>([
      [1, direct],
      [2, plain],
      [3, { xRead: plain }],
    ]);
    const imports: Record<string, unknown> = { h: _ipppip, z: _ippppij, i: _ipppip_async, o: _fd_close, n: 42 };
    wrapCallbackImports(imports, { getCallback: (key) => targets.get(key) });
    const call = (name: string, ...args: unknown[]) => (imports[name] as (...a: unknown[]) => unknown)(...args);
    expect([imports['i'], imports['o'], imports['n']]).toEqual([_ipppip_async, _fd_close, 42]);
    expect(call('h', 1, 100, 11, 12, 13)).toBe(1);
    expect(call('z', 1, 101, 11, 12, 4096, 0x1000, 2)).toBe(1); // ..., an i64 offset as low and high halves
    expect(directCalls).toEqual([
      [100, 11, 12, 13],
      [101, 11, 12, 4096, 0x1000, 2],
    ]);
    expect(slowCalls).toEqual([]);
    expect(call('h', 2, 100, 11, 12, 13)).toBe(7);
    expect(call('z', 3, 101, 11, 12, 4096, 0x1000, 2)).toBe(8);
    expect(call('h', 4, 100, 11, 12, 13)).toBe(7); // no target: the package's way (its error)
    expect(slowCalls).toEqual([
      [2, 100, 11, 12, 13],
      [3, 101, 11, 12, 4096, 0x1000, 2],
      [4, 100, 11, 12, 13],
    ]);
    expect(directCalls).toHaveLength(2);
  });
});

describe("Emscripten's stack functions", () => {
  it("are named by the package's glue; a glue that names neither is refused (WALNUT_CANTOPEN, Engine)", () => {
    const glue = fs.readFileSync(path.join(path.dirname(require.resolve('@journeyapps/wa-sqlite/package.json')), 'dist/wa-sqlite.mjs'), 'utf8');
    const names = stackExportNames(glue);
    expect(names.current).toMatch(/^\w+$/);
    expect(names.restore).toMatch(/^\w+$/);
    expect(names.current).not.toBe(names.restore);
    expect(stackExportNames('var __emscripten_stack_restore=wasmExports["tf"];var __emscripten_stack_alloc=wasmExports["uf"];var _emscripten_stack_get_current=wasmExports["vf"];')).toEqual({ current: 'vf', restore: 'tf' });
    expect(expectWalnutError(() => stackExportNames('var x__emscripten_stack_restore=wasmExports["tf"];'), 'WALNUT_CANTOPEN').reason).toBe('Engine');
  });
});
