// Hostile: `walnut restore new.ark app.db` while another process settles restores of app.db (a
// walnut open, another restore): between the restore's O_EXCL create of its temporary file and
// its lock of it, the settle found the file and took its lock for a moment (an empty, young
// file: it leaves it, lock released as it closes). The restore tried its lock once, found it
// held and failed WALNUT_BUSY: a restore refused for nothing. Now it waits for its own new
// file's lock (up to 2 s). An LD_PRELOAD shim (test/helpers/pause-at-lock-shim.c) holds the
// restore just before that lock while a lock holder takes it, as the settle does, and lets it
// go 300 ms later; the restore must then complete and sqlite3 read the restored database.
// (Since the marker, io/restore-asides.ts, walnut's own settles never lock a temporary file the
// marker lists, and legacySettle only one with asides: the lock holder now stands for a walnut
// before the marker settling beside this one. The marker's own lock is not the one paused at.)
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { holdLock, release } from '../helpers/children';
import { newDatabaseStream } from '../helpers/new-database-stream';
import { buildPauseAtLockShim } from '../helpers/pause-at-lock-shim';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const shim = buildPauseAtLockShim(dir);

describe.skipIf(shim.error !== null)('walnut restore whose new file\'s lock a settle holds for a moment', () => {
  it('waits for it and restores', async () => {
    const ark = await newDatabaseStream(dir, false);

    const out = path.join(dir, 'out');
    fs.mkdirSync(out);
    const db = path.join(out, 'app.db');
    const ready = path.join(dir, 'ready');
    const go = path.join(dir, 'go');
    const restore = spawn(process.execPath, [bin, 'restore', ark, db], {
      env: { ...process.env, LD_PRELOAD: shim.path, PAUSE_LOCK_NAME: '.app.db.restore-', PAUSE_LOCK_EXCLUDE: '.app.db.restore-asides', PAUSE_LOCK_READY: ready, PAUSE_LOCK_GO: go },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    restore.stderr.on('data', (d) => (stderr += d));
    const ended = new Promise<number | null>((resolve) => restore.on('close', (code) => resolve(code)));
    await until(() => fs.existsSync(ready), 30_000);

    // the settle's moment: the new file's lock taken while the restore is about to take it
    const [tmp] = fs.readdirSync(out).filter((n) => /^\.app\.db\.restore-[0-9a-f]{12}$/.test(n));
    expect(tmp).toBeDefined();
    const settle = await holdLock(path.join(out, tmp!), 0, 1, 'exclusive');
    fs.writeFileSync(go, '');
    await new Promise((r) => setTimeout(r, 300));
    await release(settle);

    expect(await ended, stderr).toBe(0);
    expect(execFileSync('sqlite3', [db, "SELECT who || ':' || count(*) FROM t GROUP BY who; PRAGMA integrity_check"], { encoding: 'utf8' }).trim()).toBe('new:7\nok');
    expect(fs.readdirSync(out).filter((n) => n.includes('.restore-'))).toEqual([]);
  }, 60_000);
});
