// A commit lane's leader keeps WRITE across batches while it gathers its members' commits (#21):
// another process wanting to write can only see the lock free between runs (sqlite3 polls WRITE
// with non-blocking locks and sleeps). While 4 worker_threads commit without pause through one
// lane, python3's sqlite3 (SQLite's own library, busy_timeout 30 s) must still get the lock for
// every one of its transactions and commit it: no SQLITE_BUSY, every row there, integrity ok.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

import { HELPERS } from '../helpers/children';
import { Database } from '../helpers/sqlite';
import { pageRoles, sqliteIntegrity } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

const PYTHON = [
  'import sqlite3, sys',
  'c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)',
  'busy = 0',
  'for i in range(20):',
  '    try:',
  "        c.execute('BEGIN IMMEDIATE')",
  "        c.execute('INSERT INTO t(w, v) VALUES (9, randomblob(100))')",
  "        c.execute('COMMIT')",
  '    except sqlite3.OperationalError as e:',
  '        busy += 1',
  "        print('busy', e, file=sys.stderr)",
  '        if c.in_transaction: c.execute("ROLLBACK")',
  'print(busy)',
].join('\n');

describe('a commit lane keeping WRITE across batches', () => {
  it('lets a sqlite3 writer in another process commit every transaction within its busy timeout while 4 workers commit continuously', async () => {
    const file = path.join(dir, 'lane.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB, w INTEGER)');
    const ins = db.prepare('INSERT INTO t(v) VALUES (?)');
    for (let i = 0; i < 8; i++) ins.run(Buffer.alloc(4 * 4096, i));
    db.close();
    const bytes = fs.readFileSync(file);
    const slots = pageRoles(file).pages.filter((p) => p.role === 'overflow').map((p) => ({ pgno: p.pgno, next: bytes.readUInt32BE((p.pgno - 1) * 4096) }));
    const workers = Array.from({ length: 4 }, (_, w) => new Worker(path.join(HELPERS, 'lane-worker.js'), { workerData: { db: file, w, slots: slots.slice(w * 2, w * 2 + 2), commits: 0 } }));
    let acks = 0;
    const errors: unknown[] = [];
    for (const w of workers) {
      w.on('message', (m: unknown[]) => {
        if (m[0] === 'ack') acks++;
        if (m[0] === 'error') errors.push(m[1]);
      });
      w.on('error', (e) => errors.push(e));
    }
    try {
      await new Promise<void>((resolve) => {
        const poll = (): void => (acks >= 200 ? resolve() : void setTimeout(poll, 5));
        poll();
      });
      const atStart = acks;
      const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const p = spawn('python3', ['-c', PYTHON, file]);
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (d) => (stdout += d));
        p.stderr.on('data', (d) => (stderr += d));
        p.once('exit', (code) => resolve({ code, stdout, stderr }));
      });
      expect(out.code, out.stderr).toBe(0);
      expect(out.stdout.trim(), out.stderr).toBe('0'); // every transaction got the lock
      expect(acks).toBeGreaterThan(atStart); // the workers went on committing meanwhile
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
    expect(errors).toEqual([]);
    const check = new Database(file, { readonly: true });
    expect(check.prepare('SELECT count(*) AS n FROM t WHERE w = 9').get()).toEqual({ n: 20 });
    check.close();
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  }, 180_000);
});
