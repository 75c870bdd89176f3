// Hostile: walnut open() and close() of app.db, again and again, in this process, while `walnut
// restore new.ark app.db --force` runs in another (the restore registers in app.db's marker,
// moves the old companions aside, renames its file in and settles the marker; each open settles
// that marker too, taking entry locks the restore holds). Every open either succeeds or rejects
// with a WalnutError, the restore either succeeds or is refused WALNUT_BUSY (InUse: an open
// store holds the database), no rejection goes unhandled, and afterwards sqlite3 reads either
// the old database whole (30 rows, 20 of them from its -wal) or the new one, with nothing of the
// restore left beside it (marker, temporary file, asides).
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { open, WalnutError } from '../../lib/index';
import { newDatabaseStream } from '../helpers/new-database-stream';
import { tmpDir } from '../helpers/tmp';
import { oldWalDatabase } from '../helpers/old-wal-database';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');

const oldDatabase = oldWalDatabase;

describe('open() and close() racing a restore --force of the same database', () => {
  beforeAll(async () => {
    await newDatabaseStream(dir, true);
  });

  it('each side succeeds or fails with a WalnutError; the database is the old or the new one, nothing of the restore left', async () => {
    const outcomes = new Set<string>();
    const GAP_MS = [0, 20, 60, 150];
    for (let round = 0; round < GAP_MS.length; round++) {
      const d = path.join(dir, `round-${round}`);
      fs.mkdirSync(d);
      const db = path.join(d, 'app.db');
      oldDatabase(db);
      const child = spawn(process.execPath, [bin, 'restore', path.join(dir, 'new.ark'), db, '--force'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (s) => (stderr += s));
      let done = false;
      const ended = new Promise<number | null>((resolve) => child.once('close', (status) => ((done = true), resolve(status))));
      const opens: string[] = [];
      while (!done) {
        try {
          const store = await open(db, { busyTimeout: 50 });
          await new Promise((r) => setImmediate(r));
          await store.close();
          opens.push('opened');
        } catch (e) {
          expect(e, String(e)).toBeInstanceOf(WalnutError);
          opens.push((e as WalnutError).code);
        }
        await new Promise((r) => setTimeout(r, Math.random() * GAP_MS[round]!)); // (windows for the restore between a close and the next open)
      }
      const status = await ended;
      if (status !== 0) expect(stderr).toMatch(/WALNUT_BUSY/);
      expect(status === 0 || status === 2, stderr).toBe(true);
      await (await open(db)).close(); // settles what is left, if anything
      const rows = execFileSync('sqlite3', [db, "SELECT who || ':' || count(*) FROM t GROUP BY who; PRAGMA integrity_check"], { encoding: 'utf8' }).trim();
      expect(['old:30\nok', 'new:7\nok']).toContain(rows);
      expect(rows).toBe(status === 0 ? 'new:7\nok' : 'old:30\nok');
      expect(fs.readdirSync(d).filter((f) => f.includes('.restore-'))).toEqual([]);
      outcomes.add(`restore ${status}, opens ${[...new Set(opens)].sort().join('/')}`);
    }
    if (process.env.RACE_LOG) console.log([...outcomes]);
    expect(outcomes.size).toBeGreaterThan(0);
  }, 60_000);
});
