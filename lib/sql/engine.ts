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
 * the binary is read once per process and shared by every instance.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

/* eslint-disable @typescript-eslint/no-explicit-any -- wa-sqlite is untyped JS loaded at run time */
export type SqliteApi = any;
export type SqliteModule = any;

/** What a connection needs from the package. */
export interface Engine {
  module: SqliteModule;
  sqlite3: SqliteApi;
  /** sqlite-constants.js (SQLITE_OK, SQLITE_IOERR_..., VFS flags). */
  C: Record<string, number>;
  /** wa-sqlite's FacadeVFS base class (jOpen, jRead, ... with JS arguments). */
  FacadeVFS: new (name: string, module: SqliteModule) => any;
}

const PACKAGE = '@journeyapps/wa-sqlite';
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
  factory: (options: { wasmBinary: Uint8Array }) => Promise<SqliteModule>;
  api: any;
  C: Record<string, number>;
  FacadeVFS: Engine['FacadeVFS'];
  wasm: Uint8Array;
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
    return { factory: factory.default, api, C: { ...C }, FacadeVFS: facade.FacadeVFS, wasm: fs.readFileSync(path.join(dir, 'dist/wa-sqlite.wasm')) };
  })();
  loaded.catch(() => (loaded = null)); // a failed load (package missing) is retried next time
  return loaded;
}

/** A fresh SQLite instance (its own wasm memory) and the package's helpers. */
export async function loadEngine(): Promise<Engine> {
  const p = await loadPackage();
  const module = await p.factory({ wasmBinary: p.wasm });
  return { module, sqlite3: p.api.Factory(module), C: p.C, FacadeVFS: p.FacadeVFS };
}
