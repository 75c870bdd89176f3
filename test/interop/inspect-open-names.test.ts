// walnut inspect's report of the lock bytes walnut holds beside SQLite's: the close turn
// (`locks`, CLOSE_TURN) and the name bytes (`openNames`: each walnut connection holds a shared
// OFD lock on the byte its name hashes to, wal-index/open-names.ts). A user whose open was
// refused with WALNUT_CANTOPEN HardLink could not see that the file was open under another name
// (nor who held the close turn): inspect showed SQLite's locks only, and an OFD holder's pid as
// -1. Asserted with real processes: a walnut store open in a child under one name, its hard link
// refused in another; inspect of each name says 'this name' / 'another name' (API, CLI text and
// JSON); OFD holders have pid null, a classic (python3) holder its pid. The 4,096 bytes are
// walked with a few F_OFD_GETLK calls: holders taken so that the kernel lists a high byte before
// lower ones are all found, with at most 2n+1 queries for n held bytes (counted).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { inspect } from '../../lib/integrity/inspect';
import { WalnutFile } from '../../lib/io/file';
import { CLOSE_TURN_BYTE, NAME_LOCK_FIRST, NAME_LOCK_SIZE } from '../../lib/wal-index/open-names';
import { holdLock, release, runNode, spawnOutput } from '../helpers/children';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const DIST = path.resolve(__dirname, '..', '..', 'dist', 'index.js');
let n = 0;

afterEach(() => vi.restoreAllMocks());

/** A WAL-mode database SQLite made, and a hard link to it. */
function databaseAndLink(): { db: string; link: string } {
  const db = path.join(dir, `names-${n++}.db`);
  const s = new Database(db);
  s.pragma('journal_mode = WAL');
  s.exec('CREATE TABLE t(x); INSERT INTO t VALUES (1)');
  s.close();
  const link = path.join(dir, `names-link-${n}.db`);
  fs.linkSync(db, link);
  return { db, link };
}

/** A child process with a walnut store open on `db` until told to close (stdin's end). */
async function storeOpenIn(db: string): Promise<{ close: () => Promise<void> }> {
  const script = `
    const { open } = require(${JSON.stringify(DIST)});
    open(process.argv[1]).then((store) => {
      process.stdout.write('ready\\n');
      process.stdin.resume();
      process.stdin.on('end', () => store.close().then(() => process.exit(0)));
    }, (e) => { process.stdout.write('error ' + e.code + '\\n'); process.exit(1); });`;
  const child = spawn(process.execPath, ['-e', script, db], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('ready\n')) resolve();
    });
    void exited.then(() => reject(new Error(`the store's process exited: ${out}`)));
  });
  return {
    close: async () => {
      child.stdin.end();
      await exited;
    },
  };
}

/** The code and reason of walnut's open() of `db` in another process. */
async function openInAnotherProcess(db: string): Promise<string> {
  const script = path.join(dir, 'open-once.js');
  fs.writeFileSync(script, `require(${JSON.stringify(DIST)}).open(process.argv[2]).then((s) => s.close().then(() => console.log('opened')), (e) => console.log(e.code, e.reason));`);
  return (await runNode(script, [db])).stdout.trim();
}

describe('walnut inspect: the name bytes and the close turn', () => {
  it('a store open in a child under one name: inspect says "this name" for it and "another name" for its hard link, whose open is refused HardLink', async () => {
    const { db, link } = databaseAndLink();
    const store = await storeOpenIn(db);
    try {
      expect(await openInAnotherProcess(link)).toBe('WALNUT_CANTOPEN HardLink');
      const viaLink = inspect(link);
      expect(viaLink.openNames).toHaveLength(1);
      const [held] = viaLink.openNames;
      expect(held).toMatchObject({ length: 1, under: 'another name', type: 'shared', pid: null });
      expect(held!.byte).toBeGreaterThanOrEqual(NAME_LOCK_FIRST);
      expect(held!.byte).toBeLessThan(NAME_LOCK_FIRST + NAME_LOCK_SIZE);
      expect(inspect(db).openNames).toEqual([{ ...held, under: 'this name' }]);
      // the store's SQLite locks are OFD locks too: no pid, not -1
      expect(viaLink.locks.find((l) => l.lock === 'SHARED')).toEqual({ file: 'db', lock: 'SHARED', type: 'shared', pid: null });
      expect(viaLink.locks.every((l) => l.pid === null)).toBe(true);
      // the command: JSON as the API reports it, and the text output names the other name
      const json = await spawnOutput(process.execPath, [bin, 'inspect', link, '--json']);
      expect(JSON.parse(json.stdout).openNames).toEqual(viaLink.openNames);
      const text = await spawnOutput(process.execPath, [bin, 'inspect', link]);
      expect(text.stdout).toMatch(/^openNames +\[\{"byte":\d+,"length":1,"under":"another name","type":"shared","pid":null\}\]$/m);
    } finally {
      await store.close();
    }
    expect(inspect(link).openNames).toEqual([]);
    expect(await openInAnotherProcess(link)).toBe('opened');
  });

  it('every held byte is found, whatever order the kernel lists them in, with at most 2n+1 queries; a classic holder has its pid; the close turn', async () => {
    const { db } = databaseAndLink();
    // one descriptor per byte (each its own lock owner), the highest first: the kernel lists
    // locks by owner as they came, so the whole range's first answer is a high byte
    const offsets = [4000, 7, 4095, 0, 2000];
    const holders = offsets.map((at) => {
      const f = WalnutFile.openSync(db, { readOnly: true });
      expect(f.tryLock(NAME_LOCK_FIRST + at, 1, 'shared')).toBe(true);
      return f;
    });
    const again = WalnutFile.openSync(db, { readOnly: true }); // a second holder of byte 7: one entry
    expect(again.tryLock(NAME_LOCK_FIRST + 7, 1, 'shared')).toBe(true);
    const classic = await holdLock(db, NAME_LOCK_FIRST + 3000, 1, 'shared', 'classic'); // python3's fcntl.lockf
    const turn = WalnutFile.openSync(db);
    turn.lockSync(CLOSE_TURN_BYTE, 1, 'exclusive');
    try {
      const probe = WalnutFile.openSync(db, { readOnly: true });
      try {
        // (why each answer is split both ways: a walk on from past it would miss bytes 0 and 7)
        expect(probe.lockHolder(NAME_LOCK_FIRST, NAME_LOCK_SIZE, 'exclusive')!.start).toBe(NAME_LOCK_FIRST + 4000);
      } finally {
        probe.closeSync();
      }
      const queries = vi.spyOn(WalnutFile.prototype, 'lockHolder');
      const r = inspect(db);
      const nameQueries = queries.mock.calls.filter(([start]) => start >= NAME_LOCK_FIRST).length;
      expect(r.openNames.map((h) => h.byte - NAME_LOCK_FIRST)).toEqual([0, 7, 2000, 3000, 4000, 4095]);
      expect(r.openNames.every((h) => h.under === 'another name' && h.type === 'shared' && h.length === 1)).toBe(true);
      const byClassic = r.openNames.find((h) => h.byte === NAME_LOCK_FIRST + 3000)!;
      expect(byClassic.pid).toBeGreaterThan(0);
      expect(fs.readFileSync(`/proc/${byClassic.pid}/cmdline`, 'utf8')).toMatch(/^python3/);
      expect(r.openNames.filter((h) => h.pid === null)).toHaveLength(5);
      expect(nameQueries).toBeLessThanOrEqual(2 * 6 + 1);
      expect(r.locks).toContainEqual({ file: 'db', lock: 'CLOSE_TURN', type: 'exclusive', pid: null });
    } finally {
      for (const f of [...holders, again, turn]) f.closeSync();
      await release(classic);
    }
    // nobody: one query for the whole range
    const queries = vi.spyOn(WalnutFile.prototype, 'lockHolder');
    const r = inspect(db);
    expect(r.openNames).toEqual([]);
    expect(r.locks).toEqual([]);
    expect(queries.mock.calls.filter(([start]) => start >= NAME_LOCK_FIRST)).toHaveLength(1);
  });
});
