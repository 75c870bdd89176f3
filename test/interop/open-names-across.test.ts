// One database file reached by a second name (a hard link, or the file renamed) while another
// process or worker_thread has it open under the first: the -wal and -shm are found by name, so
// the second name's connections were a second WAL of the same pages. Within one thread the open
// was refused already (test/interop/close-names); across threads and processes it opened: 300
// rows committed through one name were invisible through the other, and both names' checkpoints
// wrote into the one file. Now it is refused there too (WALNUT_CANTOPEN, reason HardLink) and
// creates nothing beside the second name, also with python3 writing a 16,500-frame WAL beside;
// the same name in two processes opens as before, and once the other name's connections are
// gone (closed, or the process killed) the second opens.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

import { describe, expect, it } from 'vitest';

import { open } from '../../lib';
import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { startPython } from '../helpers/children';
import { shmMxFrame, sqliteLargeWal, untilWalMoves } from '../helpers/large-wal';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { sqliteIntegrity, sqliteRowCount } from '../helpers/sqlite-db';
import { insertSrcRowsSql, newSrcDatabase } from '../helpers/src-rows';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir();
const DIST_SQL = path.join(__dirname, '..', '..', 'dist', 'sql.js');
const HELPERS = path.join(__dirname, '..', 'helpers');
let n = 0;
const companions = (db: string): string[] => ['-wal', '-shm'].filter((s) => fs.existsSync(db + s));

/**
 * A process holding a walnut/sql connection to `db` (opened with `options`) that ran `sql`
 * (inserting its rows); it says "ready", closes on a line on stdin and says "closed".
 */
async function holder(db: string, sql: string, options: object = {}) {
  const script = `
    const { openDatabase } = require(${JSON.stringify(DIST_SQL)});
    (async () => {
      const d = await openDatabase(process.argv[1], JSON.parse(process.argv[3]));
      await d.exec(process.argv[2]);
      process.stdout.write('ready\\n');
      process.stdin.once('data', async () => {
        await d.close();
        process.stdout.write('closed\\n');
        process.exit(0);
      });
    })().catch((e) => { process.stdout.write('error ' + e.code + ' ' + e.message + '\\n'); process.exit(1); });`;
  const child = spawn(process.execPath, ['-e', script, db, sql, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const said = (line: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (out.includes(`${line}\n`)) resolve();
        else if (out.includes('error ')) reject(new Error(out));
      };
      child.stdout.on('data', (d) => {
        out += d;
        check();
      });
      child.once('exit', () => (out.includes(`${line}\n`) ? resolve() : reject(new Error(`exited: ${out}`))));
      check();
    });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await said('ready');
  return {
    close: async () => {
      const closed = said('closed');
      child.stdin.write('close\n');
      await closed;
      await exited;
    },
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

const refusedEverywhere = async (name: string): Promise<void> => {
  await expectRejectsWalnut(open(name), 'WALNUT_CANTOPEN', { reason: 'HardLink' });
  await expectRejectsWalnut(openDatabase(name), 'WALNUT_CANTOPEN', { reason: 'HardLink' });
  expect(companions(name)).toEqual([]);
};

it('a hard link of a database another process has open is refused and creates nothing; the same name opens beside it; after that process closes the link opens, every row there', async () => {
  const db = await newSrcDatabase(path.join(dir, `across-${n++}.db`));
  const link = path.join(dir, `across-link-${n}.db`);
  fs.linkSync(db, link);
  const other = await holder(db, insertSrcRowsSql('holder', 300));
  try {
    await refusedEverywhere(link);
    const same = await openDatabase(db); // the same name in another process: one WAL, as always
    await same.exec(insertSrcRowsSql('same', 10));
    await same.close();
  } finally {
    await other.close();
  }
  expect(companions(db)).toEqual([]);
  const second = await openDatabase(link); // its name's turn now
  await second.exec(insertSrcRowsSql('link', 10));
  await second.close();
  expect(companions(link)).toEqual([]);
  expect(sqliteIntegrity(db)).toEqual(['ok']);
  expect(sqliteRowCount(db, 't')).toBe(320);
});

it('a database renamed while another process has it open is refused under its new name; a SIGKILLed holder leaves no lock behind', async () => {
  const db = await newSrcDatabase(path.join(dir, `renamed-${n++}.db`));
  const other = await holder(db, insertSrcRowsSql('holder', 100));
  const renamed = path.join(dir, `renamed-new-${n}.db`);
  fs.renameSync(db, renamed);
  try {
    await refusedEverywhere(renamed);
  } finally {
    fs.renameSync(renamed, db); // back, so that the holder's close checkpoints into its own name
    await other.close();
  }
  expect(sqliteRowCount(db, 't')).toBe(100);

  const link = path.join(dir, `killed-link-${n}.db`);
  fs.linkSync(db, link);
  const killed = await holder(db, insertSrcRowsSql('holder', 0));
  await refusedEverywhere(link);
  await killed.kill(); // its locks go with its descriptors
  const store = await open(link);
  await store.close();
  expect(sqliteIntegrity(db)).toEqual(['ok']);
});

it('beside a python3 writer, on a WAL of 16,500 frames (5 wal-index segments) sqlite3 wrote: the hard link is refused every time and creates nothing; every row of both writers there', async () => {
  const db = sqliteLargeWal(dir, `large-${n++}`, 4096, 16_500);
  const before = sqliteRowCount(db, 't');
  const link = path.join(dir, `large-link-${n}.db`);
  fs.linkSync(db, link);
  const other = await holder(db, "INSERT INTO t(w, v) VALUES (-1, x'00')", { autoCheckpoint: false }); // (the WAL stays large)
  // (the writer commits through its own name all along: NORMAL, no fsync per commit, no auto-checkpoint)
  const python = startPython(path.join(HELPERS, 'sqlite-writer.py'), [db, '30', '1', '0', '0', '0', '0', 'NORMAL']);
  let refusals = 0;
  try {
    await untilWalMoves(db, shmMxFrame(db));
    expect(shmMxFrame(db)).toBeGreaterThan(16_500);
    for (; refusals < 5; refusals++) await refusedEverywhere(link);
  } finally {
    python.stop();
  }
  const commits = Number((await python.output).trim());
  await other.close();
  expect(refusals).toBe(5);
  expect(companions(link)).toEqual([]);
  expect(sqliteIntegrity(db)).toEqual(['ok']);
  expect(sqliteRowCount(db, 't')).toBe(before + 1 + commits);
  expect(sqliteRowCount(db, 't', 'w = -1')).toBe(1);
});

it('a hard link of a database a worker_thread has open is refused; once the worker closed it, the link opens', async () => {
  const db = await newSrcDatabase(path.join(dir, `worker-${n++}.db`));
  const link = path.join(dir, `worker-link-${n}.db`);
  fs.linkSync(db, link);
  const worker = new Worker(path.join(HELPERS, 'sql-close-worker.js'), { workerData: { db, rows: 200 } });
  const message = (): Promise<string> => new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  try {
    expect(await message()).toBe('ready');
    await refusedEverywhere(link);
    const closed = message();
    worker.postMessage('close');
    expect(await closed).toBe('closed');
  } finally {
    await worker.terminate();
  }
  const store = await openDatabase(link);
  await store.exec(insertSrcRowsSql('link', 5));
  await store.close();
  expect(sqliteIntegrity(db)).toEqual(['ok']);
  expect(sqliteRowCount(db, 't')).toBe(205);
});

// A directory reached by a second path (a bind mount; one volume mounted at /data in one
// container and at /srv/data in another) is one name: its -wal and -shm are the same files from
// both, as for SQLite. The real paths differ, and when they chose the byte such an open beside a
// holder was refused (WALNUT_CANTOPEN HardLink), where walnut had opened it before. The mount is
// made in a mount namespace of its own (unshare -m; -Urm unprivileged), seen only by the opener.
const unshareArgs = ['-m', '-Urm'].find((flag) => spawnSync('unshare', [flag, 'true'], { stdio: 'ignore' }).status === 0);
const UNSHARE_SKIP = unshareArgs === undefined ? 'unshare -m (util-linux, with mount namespaces allowed) is not available here' : null;
if (UNSHARE_SKIP !== null) {
  describe('a database opened through a bind mount of its directory', () => {
    it.skip(`skipped: ${UNSHARE_SKIP}`, () => undefined);
  });
}

describe.skipIf(UNSHARE_SKIP !== null)('a database opened through a bind mount of its directory', () => {
  it('opens beside a connection holding it by its own path, one WAL for both; a hard link there is still refused', async () => {
    const home = fs.mkdtempSync(path.join(dir, 'bind-home-'));
    const mountPoint = fs.mkdtempSync(path.join(dir, 'bind-mount-'));
    const db = await newSrcDatabase(path.join(home, 'x.db'));
    fs.linkSync(db, path.join(home, 'link.db'));
    const held = await openDatabase(db);
    await held.exec(insertSrcRowsSql('held', 100));
    const script = `
      const { openDatabase } = require(${JSON.stringify(DIST_SQL)});
      (async () => {
        const out = {};
        for (const name of ['x.db', 'link.db']) {
          try {
            const d = await openDatabase(require('path').join(process.argv[1], name));
            await d.exec(process.argv[2]);
            out[name] = (await d.get('SELECT count(*) AS n FROM t')).n;
            await d.close();
          } catch (e) {
            out[name] = e.code + ' ' + e.reason;
          }
        }
        process.stdout.write(JSON.stringify(out));
      })();`;
    // (not spawnSync: this thread's connection lets its WRITE go on its event loop)
    const child = spawn('unshare', [unshareArgs!, 'sh', '-c', 'mount --bind "$1" "$2" && exec "$3" -e "$4" "$2" "$5"', 'sh', home, mountPoint, process.execPath, script, insertSrcRowsSql('bound', 10)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    await new Promise((resolve) => child.once('close', resolve));
    expect(stderr).toBe('');
    expect(JSON.parse(stdout)).toEqual({ 'x.db': 110, 'link.db': 'WALNUT_CANTOPEN HardLink' });
    expect(await held.get('SELECT count(*) AS n FROM t')).toEqual({ n: 110 });
    await held.close();
    expect(companions(db)).toEqual([]);
    expect(companions(path.join(home, 'link.db'))).toEqual([]);
    expect(sqliteIntegrity(db)).toEqual(['ok']);
    expect(sqliteRowCount(db, 't')).toBe(110);
  });
});
