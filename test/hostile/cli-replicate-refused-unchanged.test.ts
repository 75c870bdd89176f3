// `walnut replicate` with an option the replication refuses (--replicas out of 1..5, a stream
// name JetStream refuses, an empty --nats) is a usage error: exit 2, one line, and the database
// and its files exactly as they were. The command opened the database before it checked them:
// a rollback-journal database was converted to WAL mode for good (bytes 18/19 and the change
// counter rewritten), and a WAL-mode one with a -wal a crashed writer left was checkpointed and
// its -wal and -shm removed, by a command that then refused its own arguments. (A database with
// no -wal/-shm, where open and close change nothing, is test/hostile/cli-last-connection.test.ts.)
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { Database, sqliteWritesWal, typicalWork } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);
const REFUSED = [['--stream', 's', '--replicas', '9'], ['--stream', 's', '--replicas', '0'], ['--stream', 'a.b'], ['--stream', 's', '--nats', '']];

/** Each of the database's files that exists, by its hash (null: absent). */
const files = (db: string) => Object.fromEntries(['', '-wal', '-shm', '-journal'].map((s) => [s || 'db', fs.existsSync(db + s) ? createHash('sha256').update(fs.readFileSync(db + s)).digest('hex') : null]));

let n = 0;

async function expectRefusedUnchanged(db: string): Promise<void> {
  for (const extra of REFUSED) {
    const before = files(db);
    const r = await walnut('replicate', db, '--nats', 'nats://127.0.0.1:1', ...extra);
    expect(r.status, extra.join(' ')).toBe(2);
    expect(r.stderr, extra.join(' ')).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: [^\n]+\n$/);
    expect(r.stdout).toBe('');
    expect(files(db), extra.join(' ')).toEqual(before);
  }
}

describe('walnut replicate refusing its options changes nothing on disk', () => {
  it('a rollback-journal database stays in rollback-journal mode, byte for byte', async () => {
    const db = path.join(dir, `rollback${n++}.db`);
    const s = new Database(db);
    s.exec('CREATE TABLE t(a); INSERT INTO t VALUES (1), (2)');
    s.close();
    await expectRefusedUnchanged(db);
    const again = new Database(db, { readonly: true });
    expect(again.pragma('journal_mode', { simple: true })).toBe('delete');
    again.close();
  });

  it('a WAL-mode database with the -wal a crashed writer left keeps its -wal (not checkpointed, not removed)', async () => {
    const db = sqliteWritesWal(dir, `crashed${n++}`, 4096, typicalWork(8, n)).db;
    expect(fs.existsSync(`${db}-wal`)).toBe(true);
    await expectRefusedUnchanged(db);
  });
});
