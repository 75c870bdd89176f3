// walnut/sql's close() raced with get/all made before it: a read that goes to a read connection
// awaits that connection first (one opening, or an open one: an await either way), and close(),
// called in the same turn, set the closing mark meanwhile: the read was refused WALNUT_CLOSED
// although it was made before close() (as the calls before close() are promised to finish:
// interop/sql 'close racing queries'). Now close() lets such reads run first.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('walnut/sql close() after get/all made in the same turn', () => {
  it('the reads run (read connections open or still to open, a statement the reader hands to the writer); later calls are WALNUT_CLOSED', async () => {
    for (const warm of [false, true]) {
      const db = await openDatabase(path.join(dir, `reads-${warm}.db`), { readConnections: 2 });
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v); CREATE TABLE u(v)');
      await db.run('INSERT INTO t(v) VALUES (1)');
      if (warm) await Promise.all([db.get('SELECT v FROM t'), db.all('SELECT v FROM t'), db.get('SELECT v FROM t WHERE id = 1')]);
      const before = [
        db.get('SELECT v FROM t'),
        db.all('SELECT v FROM t'),
        db.get('SELECT v FROM t WHERE id = ?', [1]),
        db.all('INSERT INTO u(v) VALUES (2) RETURNING v'), // the writer's (WRITER_ONLY_SQL)
        db.all('UPDATE t SET v = v WHERE 0'), // a reader prepares it, finds it writes, hands it to the writer
      ];
      const closing = db.close();
      const after = expectRejectsWalnut(db.get('SELECT v FROM t'), 'WALNUT_CLOSED');
      expect(await Promise.all(before)).toEqual([{ v: 1 }, [{ v: 1 }], { v: 1 }, [{ v: 2 }], []]);
      await closing;
      await after;
      expect(db.open).toBe(false);
    }
  });
});
