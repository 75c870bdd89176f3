// walnut/sql binds a string parameter by copying it into memory SQLite allocates
// (statement-runner.ts #bindText); when that allocation failed the statement was refused as
// WALNUT_INVALID_ARGUMENT (reason params), as if the value were wrong. It is SQLite's out of
// memory, as its own bind reports when its copy cannot be made: WALNUT_SQL with sqliteCode
// SQLITE_NOMEM (7). SQLite's allocator is made to refuse that one allocation (its size is the
// string's): wa-sqlite is built without memory statistics (hard_heap_limit has no effect) and its
// 2 GiB heap would take gigabytes of strings to fill; everything else is real.
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import type * as EngineModule from '../../lib/sql/engine';
import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const REFUSED_BYTES = 1_000_003; // the UTF-8 size of the string below, which nothing else allocates

// The build under test (vitest.config.mjs: the tests run dist/, loaded by Node): its engine
// module's loadEngine, which the connection calls through the module's exports at open, is
// wrapped for the engines made here (vi.mock reaches only modules vitest itself loads).
const engineModule = createRequire(__filename)(path.resolve(__dirname, '..', '..', 'dist', 'sql', 'engine.js')) as typeof EngineModule;
const loadEngine = engineModule.loadEngine;
(engineModule as { loadEngine: typeof loadEngine }).loadEngine = async () => {
  const engine = await loadEngine();
  const malloc = engine.module._sqlite3_malloc;
  engine.module._sqlite3_malloc = (n: number) => (n === REFUSED_BYTES ? 0 : malloc(n));
  return engine;
};

const dir = tmpDir();

describe('walnut/sql: no memory for a string parameter', () => {
  it('is WALNUT_SQL with SQLITE_NOMEM, nothing written, and the connection goes on', async () => {
    const db = await openDatabase(path.join(dir, 'nomem.db'), { readConnections: 0 });
    try {
      await db.exec('CREATE TABLE t(v TEXT)');
      const err = await expectRejectsWalnut(db.run('INSERT INTO t VALUES (?)', ['x'.repeat(REFUSED_BYTES)]), 'WALNUT_SQL', { sqliteCode: 7 });
      expect(err.message).toContain('out of memory');
      await db.run('INSERT INTO t VALUES (?)', ['x'.repeat(REFUSED_BYTES - 1)]);
      expect(await db.all('SELECT length(v) AS n FROM t')).toEqual([{ n: REFUSED_BYTES - 1 }]);
    } finally {
      await db.close();
    }
  });
});
