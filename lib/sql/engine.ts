/**
 * sql/engine.ts — loads SQLite: `@journeyapps/wa-sqlite` 2.x, its synchronous wasm build.
 *
 * The package is ESM-only and its dist/*.mjs are Emscripten modules built for web/worker: in
 * Node they cannot fetch the .wasm, so the binary is read from the package and passed in as
 * `wasmBinary`. walnut is compiled to CommonJS, where TypeScript would turn `import()` into
 * `require()`; the import below is a real dynamic import (works from CJS and ESM consumers).
 * The package is loaded on first use only: `walnut` itself never loads it.
 *
 * Invariants: one wasm instance (Module) per database connection, because wa-sqlite's
 * retryOps/pendingOps are per-Module globals whose retry() re-runs other connections' steps;
 * the binary is read and compiled once per process and shared by every instance.
 *
 * Callbacks from SQLite into JS (the VFS's methods) come through Emscripten imports named after
 * their signature (`_ipppip`: returns i, then the callback's key and its arguments), which call
 * the package's adapters_support(): a rest array, a spread, a Map lookup, an apply and a check
 * for a Promise per call, ~18 calls per small transaction. The imports are wrapped here
 * (instantiateWasm): a callback registered as a DIRECT function (walnut-vfs.ts: synchronous,
 * never a Promise) is called straight away; every other one goes the package's way.
 *
 * Emscripten's shadow stack (the C stack in wasm memory, growing down towards the module's
 * static data): each call into the module lowers its pointer and gives the space back as it
 * returns. When V8's own stack runs out inside SQLite (a RangeError, statement-runner.ts header)
 * the frames are unwound without giving it back, so the pointer stayed lower by what they held
 * (90-130 KB a LIKE of 20,000 wildcards, 2 KB a statement too deep to parse) and, a few such
 * errors on (4 such LIKEs, 252 such statements), the module's calls ran their stack over its
 * static data (RuntimeError: "table index is out of bounds", "null function or function
 * signature mismatch", for every later call). Engine.resetStack() puts the pointer back where it
 * is between calls (read once the instance was made: no call into the module is in progress
 * then, nor when a caller catches such an error, the build being synchronous). The glue keeps
 * the two stack functions inside its closure: their export names are read from its text (a
 * build whose text names neither is refused at load, WALNUT_CANTOPEN, reason Engine, rather
 * than run unable to recover).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

import { walnutError } from '../errors';

/* eslint-disable @typescript-eslint/no-explicit-any -- wa-sqlite is untyped JS loaded at run time */
export type SqliteApi = any;
export type SqliteModule = any;

/** Marks a callback target (a function given to Module.setCallback) the imports may call directly. */
export const DIRECT = Symbol('walnut direct callback');

/** What a connection needs from the package. */
export interface Engine {
  module: SqliteModule;
  sqlite3: SqliteApi;
  /** sqlite-constants.js (SQLITE_OK, SQLITE_IOERR_..., VFS flags). */
  C: Record<string, number>;
  /** wa-sqlite's FacadeVFS base class (jOpen, jRead, ... with JS arguments). */
  FacadeVFS: new (name: string, module: SqliteModule) => any;
  /** Puts Emscripten's stack pointer back where it is between calls (header comment): after V8's stack ran out inside SQLite. */
  resetStack(): void;
}

const PACKAGE = '@journeyapps/wa-sqlite';
/** The WebAssembly global, as far as used here (its types are not in this project's libs). */
type WasmModule = object;
type WasmInstance = { exports: Record<string, unknown> };
const WebAssemblyApi = (globalThis as any).WebAssembly as { compile(bytes: Uint8Array): Promise<WasmModule>; Instance: new (module: WasmModule, imports: object) => WasmInstance };
const nativeImport = new Function('url', 'return import(url)') as (url: string) => Promise<any>;

/**
 * A real import() of an ES module. Hosts that run this file inside a VM context (test runners)
 * refuse a Function-built import(); there the literal import() below is theirs (in the CJS
 * build TypeScript turns it into require(), but plain Node never gets there).
 */
async function importModule(url: string): Promise<any> {
  try {
    return await nativeImport(url);
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING') throw e;
    return import(url);
  }
}

interface Package {
  factory: (options: object) => Promise<SqliteModule>;
  api: any;
  C: Record<string, number>;
  FacadeVFS: Engine['FacadeVFS'];
  wasm: WasmModule;
  /** The instance's export names of Emscripten's stack functions (header comment). */
  stack: { current: string; restore: string };
}
let loaded: Promise<Package> | null = null;

function loadPackage(): Promise<Package> {
  loaded ??= (async () => {
    const dir = path.dirname(require.resolve(`${PACKAGE}/package.json`));
    const url = (rel: string): string => pathToFileURL(path.join(dir, rel)).href;
    const [factory, api, C, facade] = await Promise.all([
      importModule(url('dist/wa-sqlite.mjs')),
      importModule(url('src/sqlite-api.js')),
      importModule(url('src/sqlite-constants.js')),
      importModule(url('src/FacadeVFS.js')),
    ]);
    const wasm = await WebAssemblyApi.compile(fs.readFileSync(path.join(dir, 'dist/wa-sqlite.wasm')));
    const stack = stackExportNames(fs.readFileSync(path.join(dir, 'dist/wa-sqlite.mjs'), 'utf8'));
    return { factory: factory.default, api, C: { ...C }, FacadeVFS: facade.FacadeVFS, wasm, stack };
  })();
  loaded.catch(() => (loaded = null)); // a failed load (package missing) is retried next time
  return loaded;
}

/**
 * The export names of `_emscripten_stack_get_current` and `__emscripten_stack_restore` in an
 * Emscripten glue text (`var _emscripten_stack_get_current=wasmExports["vf"]`; exported for its
 * unit test).
 */
export function stackExportNames(glue: string): { current: string; restore: string } {
  const exportName = (symbol: string): string | undefined => new RegExp(`[\\s;,]${symbol}\\s*=\\s*wasmExports\\[["'](\\w+)["']\\]`).exec(glue)?.[1];
  const current = exportName('_emscripten_stack_get_current');
  const restore = exportName('__emscripten_stack_restore');
  if (current === undefined || restore === undefined) {
    throw walnutError('WALNUT_CANTOPEN', `${PACKAGE}: its glue (dist/wa-sqlite.mjs) names no export of Emscripten's stack functions, which walnut/sql needs to recover from SQLite running out of stack (an unsupported build of the package)`, { reason: 'Engine' });
  }
  return { current, restore };
}

/** A fresh SQLite instance (its own wasm memory) and the package's helpers. */
export async function loadEngine(): Promise<Engine> {
  const p = await loadPackage();
  let instance: WasmInstance | null = null;
  const options = {
    // synchronous: a throw here rejects the factory's promise (the package gives no way to
    // reject it later: an asynchronous failure would leave it pending for ever)
    instantiateWasm(imports: Record<string, unknown>, receive: (instance: object, module: WasmModule) => void): object {
      for (const namespace of Object.values(imports)) {
        if (typeof namespace === 'object' && namespace !== null) wrapCallbackImports(namespace as Record<string, unknown>, options as { getCallback?: (key: number) => unknown });
      }
      instance = new WebAssemblyApi.Instance(p.wasm, imports);
      receive(instance, p.wasm);
      return {};
    },
  };
  const module = await p.factory(options); // `options` becomes the Module object
  const current = instance!.exports[p.stack.current];
  const restore = instance!.exports[p.stack.restore];
  if (typeof current !== 'function' || typeof restore !== 'function') {
    throw walnutError('WALNUT_CANTOPEN', `${PACKAGE}: the wasm instance has no functions ${p.stack.current} and ${p.stack.restore} (Emscripten's stack functions, as its glue names them)`, { reason: 'Engine' });
  }
  const between = current() as number; // the module has run its start-up: no call is in progress
  return { module, sqlite3: p.api.Factory(module), C: p.C, FacadeVFS: p.FacadeVFS, resetStack: () => void restore(between) };
}

type Callback = (...args: unknown[]) => unknown;

/**
 * Replaces each synchronous callback import (`_` + signature letters, header comment) by one
 * that calls a DIRECT target itself, with the same arguments adapters_support would pass it
 * (exported for its unit test).
 */
export function wrapCallbackImports(imports: Record<string, unknown>, module: { getCallback?: (key: number) => unknown }): void {
  const target = (key: number): Callback | null => {
    const t = module.getCallback?.(key) as Callback | undefined; // (set by the package's runtime before any callback)
    return typeof t === 'function' && (t as { [DIRECT]?: boolean })[DIRECT] === true ? t : null;
  };
  for (const [name, f] of Object.entries(imports)) {
    if (typeof f !== 'function' || !/^_[ipjfdv]+$/.test(f.name)) continue; // not the _async ones: those may return a Promise
    // its parameters: the key and the callback's arguments; an i64 (j) comes as two i32 halves (legalized)
    const params = f.name.length - 2 + (f.name.match(/j/g)?.length ?? 0);
    imports[name] = withDirectTargets(params, f as Callback, target);
  }
}

/** `slow` with DIRECT targets called straight away; one closure per parameter count, so the slow path sees exactly what wasm passed. */
function withDirectTargets(params: number, slow: Callback, target: (key: number) => Callback | null): Callback {
  type K = number;
  switch (params) {
    case 2: return (k, a) => { const t = target(k as K); return t === null ? slow(k, a) : t(a); };
    case 3: return (k, a, b) => { const t = target(k as K); return t === null ? slow(k, a, b) : t(a, b); };
    case 4: return (k, a, b, c) => { const t = target(k as K); return t === null ? slow(k, a, b, c) : t(a, b, c); };
    case 5: return (k, a, b, c, d) => { const t = target(k as K); return t === null ? slow(k, a, b, c, d) : t(a, b, c, d); };
    case 6: return (k, a, b, c, d, e) => { const t = target(k as K); return t === null ? slow(k, a, b, c, d, e) : t(a, b, c, d, e); };
    case 7: return (k, a, b, c, d, e, g) => { const t = target(k as K); return t === null ? slow(k, a, b, c, d, e, g) : t(a, b, c, d, e, g); };
    case 8: return (k, a, b, c, d, e, g, h) => { const t = target(k as K); return t === null ? slow(k, a, b, c, d, e, g, h) : t(a, b, c, d, e, g, h); };
    case 9: return (k, a, b, c, d, e, g, h, i) => { const t = target(k as K); return t === null ? slow(k, a, b, c, d, e, g, h, i) : t(a, b, c, d, e, g, h, i); };
    default: return slow;
  }
}
