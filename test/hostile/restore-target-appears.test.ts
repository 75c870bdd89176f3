// `walnut restore app.ark app.db` without --force promises not to replace an existing database.
// It checked that app.db was absent when it began, and at the end renamed its new file over
// app.db whatever was there by then: a database created meanwhile (an application starting up
// and creating app.db, sqlite3 opening it, a second restore to the same path finishing first)
// was replaced without a word, exit 0, and a connection open on it went on writing into the
// unlinked file, its commits lost. Now the new file is put in place only where nothing is (a
// hard link, which fails EEXIST, then the temporary name removed): a database that appeared is
// left as it is, the restore fails WALNUT_INVALID_ARGUMENT (reason exists) and leaves no
// temporary file. The restore is frozen (SIGSTOP) while it writes, so the database appears
// before its end at any machine speed.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');

describe('walnut restore without --force, a database created at the target while it runs', () => {
  it('is left as it is: exit 2 (exists), no temporary file; a later restore --force replaces it', async () => {
    const src = path.join(dir, 'src.db');
    const s = new Database(src);
    s.pragma('journal_mode = WAL');
    s.exec('CREATE TABLE t(v); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 4000) INSERT INTO t SELECT randomblob(1000) FROM c');
    s.close();
    const ark = path.join(dir, 'src.ark');
    const exported = await spawnOutput(process.execPath, [bin, 'export', src, '-o', ark]);
    expect(exported.status, exported.stderr).toBe(0);

    const target = path.join(dir, 'app.db');
    const temporary = () => fs.readdirSync(dir).filter((f) => f.startsWith('.app.db.restore-') && !f.endsWith('-asides'));
    const child = spawn(process.execPath, [bin, 'restore', ark, target, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    try {
      await until(() => temporary().length > 0 || child.exitCode !== null, WAIT_MS, () => stderr);
      child.kill('SIGSTOP');
      expect(child.exitCode, 'the restore ended before it could be stopped').toBe(null);
      // the application creates its database meanwhile
      const app = new Database(target);
      app.exec("CREATE TABLE mine(x); INSERT INTO mine VALUES ('kept')");
      app.close();
      child.kill('SIGCONT');
      expect(await exited).toBe(2);
    } finally {
      child.kill('SIGKILL');
    }
    expect(stderr).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: [^\n]*app\.db exists[^\n]*--force[^\n]*\n$/);
    expect(JSON.parse(stdout)).toMatchObject({ error: { reason: 'exists' } });
    const app = new Database(target, { readonly: true });
    expect(app.prepare('SELECT x FROM mine').all()).toEqual([{ x: 'kept' }]);
    app.close();
    expect(temporary()).toEqual([]);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('.app.db'))).toEqual([]); // nor a marker

    // asked for by name, the replacement happens
    const forced = await spawnOutput(process.execPath, [bin, 'restore', ark, target, '--force']);
    expect(forced.status, forced.stderr).toBe(0);
    const back = new Database(target, { readonly: true });
    expect(back.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 4000 });
    back.close();
  });
});
