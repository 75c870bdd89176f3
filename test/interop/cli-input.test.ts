// The walnut command given what a hostile (or hurried) new user gives it: a FIFO or a directory
// where the database or its -wal should be, a directory or nothing as the export stream, an
// empty target, an unknown bench scenario, a --seconds that is not a number. Each ends at once
// with exit status 2 and one line naming the WalnutError code and the cause; nothing runs (an
// --interval of replicate / replica too: refused before the store or replication starts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { spawnOutput } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { sqliteWritesWal } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
// awaited, not spawnSync: a test's run of them held the vitest worker's event loop 39 s at load 15,
// near the 60 s of its RPC timeout; the timeout ends a process that hangs (a loaded start is seconds)
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args], { timeout: WAIT_MS });

/** Exit 2, nothing on stdout, one stderr line matching `line`. */
async function refused(args: string[], line: RegExp): Promise<void> {
  const r = await walnut(...args);
  expect(r.signal, `walnut ${args.join(' ')} hung`).toBeNull();
  expect({ status: r.status, stdout: r.stdout }, `walnut ${args.join(' ')}`).toEqual({ status: 2, stdout: '' });
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr.trim()).toMatch(line);
}

describe('walnut checkpoint / recover on files that are not regular files', () => {
  it('a FIFO or a directory as the database, a FIFO as its -wal: WALNUT_CANTOPEN NotRegularFile naming it, not a failed pread', async () => {
    const fifo = path.join(dir, 'pipe.db');
    await spawnOutput('mkfifo', [fifo]);
    const { db } = sqliteWritesWal(dir, 'w', 4096, (d) => d.exec('CREATE TABLE t(x)'));
    fs.rmSync(`${db}-wal`);
    await spawnOutput('mkfifo', [`${db}-wal`]);
    // (each verb opens the database through open(): one case each keeps the spawns few)
    await refused(['checkpoint', fifo], new RegExp(`^walnut: WALNUT_CANTOPEN: ${fs.realpathSync(fifo)} is not a regular file \\(a FIFO\\): not a database$`));
    await refused(['recover', dir], new RegExp(`^walnut: WALNUT_CANTOPEN: ${fs.realpathSync(dir)} is not a regular file \\(a directory\\): not a database$`));
    await refused(['recover', '--repair', db], new RegExp(`^walnut: WALNUT_CANTOPEN: ${fs.realpathSync(db)}-wal is not a regular file \\(a FIFO\\): remove it`));
    // the API: open() refuses the same way
    await expectRejectsWalnut(open(fifo), 'WALNUT_CANTOPEN', { reason: 'NotRegularFile' });
    await expectRejectsWalnut(open(db), 'WALNUT_CANTOPEN', { reason: 'NotRegularFile', path: `${fs.realpathSync(db)}-wal` });
  });
});

describe('walnut restore and bench arguments', () => {
  it('a directory as the stream, an empty target: WalnutErrors naming the cause, nothing created', async () => {
    const before = fs.readdirSync(dir).sort();
    await refused(['restore', dir, path.join(dir, 'r.db')], /^walnut: WALNUT_CANTOPEN: cannot read the export stream .*: it is a directory$/);
    const ark = path.join(dir, 'empty.ark');
    fs.writeFileSync(ark, '');
    await refused(['restore', ark, ''], /^walnut: WALNUT_INVALID_ARGUMENT: the database path must be a non-empty string/);
    expect(fs.readdirSync(dir).sort()).toEqual([...before, 'empty.ark'].sort());
  });

  it('an unknown bench scenario or a --seconds that is not a positive number is WALNUT_INVALID_ARGUMENT before anything runs', async () => {
    await refused(['bench', 'bogus'], /^walnut: WALNUT_INVALID_ARGUMENT: unknown scenario "bogus" \(commit, checksum or all\)$/);
    for (const s of ['abc', '0']) await refused(['bench', 'checksum', '--seconds', s], /^walnut: WALNUT_INVALID_ARGUMENT: --seconds must be/);
  });
});

describe('walnut replicate / replica arguments', () => {
  it('an --interval that is not a whole number of ms >= 1 is WALNUT_INVALID_ARGUMENT before anything is opened (it was refused once the store and replication ran: the process stayed up)', async () => {
    const { db } = sqliteWritesWal(dir, 'repl', 4096, (d) => d.exec('CREATE TABLE t(x)'));
    const nats = 'nats://127.0.0.1:1'; // nobody answers: nothing here may need it
    // '1e3', '0x10', ' 5' and '5.0' were taken by Number() as 1000, 16, 5 and 5: only decimal digits are
    for (const interval of ['abc', '0', '1e3', '0x10', ' 5', '5.0']) await refused(['replicate', db, '--nats', nats, '--stream', 's', '--interval', interval], /^walnut: WALNUT_INVALID_ARGUMENT: --interval must be a whole number of ms >= 1$/);
    const replica = path.join(dir, 'replica.db');
    await refused(['replica', replica, '--nats', nats, '--stream', 's', '--interval', '1.5'], /^walnut: WALNUT_INVALID_ARGUMENT: --interval must be a whole number of ms >= 1$/);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('replica.db'))).toEqual([]);
  });

  it('a --replicas that is not decimal digits is WALNUT_INVALID_ARGUMENT before anything is opened (Number() took 0x3 and 3e0 as 3)', async () => {
    const { db } = sqliteWritesWal(dir, 'replicas', 4096, (d) => d.exec('CREATE TABLE t(x)'));
    const before = fs.readdirSync(dir).filter((f) => f.startsWith('replicas.db')).sort();
    for (const replicas of ['0x3', '3e0', ' 3', 'three']) {
      await refused(['replicate', db, '--nats', 'nats://127.0.0.1:1', '--stream', 's', '--replicas', replicas], /^walnut: WALNUT_INVALID_ARGUMENT: .*replicas/);
    }
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('replicas.db')).sort()).toEqual(before);
  });
});

describe('walnut usage errors', () => {
  // commander printed "error: unknown option '--nope'" and then the whole help: no WalnutError
  // code and many lines, where README promises one line naming the code for every exit 2
  it('an unknown command or option, a missing or extra argument: exit 2, one line naming WALNUT_INVALID_ARGUMENT', async () => {
    const db = path.join(dir, 'usage.db');
    await refused(['bogus'], /^walnut: WALNUT_INVALID_ARGUMENT: unknown command 'bogus' \(walnut --help\)$/);
    await refused(['inspect', db, '--nope'], /^walnut: WALNUT_INVALID_ARGUMENT: unknown option '--nope' \(walnut --help\)$/);
    await refused(['inspect'], /^walnut: WALNUT_INVALID_ARGUMENT: missing required argument 'db'/);
    await refused(['inspect', db, 'extra'], /^walnut: WALNUT_INVALID_ARGUMENT: too many arguments for 'inspect'/);
    await refused(['checkpoint', db, '--mode'], /^walnut: WALNUT_INVALID_ARGUMENT: option '--mode <mode>' argument missing/);
    expect(fs.existsSync(db)).toBe(false);
  });
});
