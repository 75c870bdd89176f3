/**
 * io/real-path.ts — the file a path names once every symbolic link is followed, also for a file
 * that does not exist yet.
 *
 * SQLite resolves a database path component by component (os_unix.c mkFullPathname, with
 * readlink), so a link whose target does not exist yet names that target: `sqlite3 current.db`
 * with `current.db -> v2.db` creates v2.db and keeps the link. realpath(3) fails on such a
 * dangling link; this follows it by hand (at most 40 links, as the kernel does) and, for the
 * last name that is not a link, resolves its directory. checkDbPath: what a database path
 * argument must be before any of that (restore, inspect, verify); requireRegularFiles: what the
 * files it names must be before they are opened; refuseCompanionName: a file walnut creates
 * (a restored database, an export) must not be named as another database's -wal, -shm, ...
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { walnutError } from '../errors';
import { DB_HEADER_SIZE, hasDbMagic } from '../format/db-header';
import { dbHeaderThroughWal } from '../wal/page1-through-wal';

const MAX_LINKS = 40; // the kernel's limit (ELOOP)

/** `file` resolved as above; when even its directory is missing, the absolute path (the open that follows reports it). */
export function resolvedPath(file: string): string {
  let at = path.resolve(file);
  for (let hops = 0; hops < MAX_LINKS; hops++) {
    try {
      return fs.realpathSync(at);
    } catch {
      // not there yet, or a link to a name not there yet
    }
    let target: string;
    try {
      target = fs.readlinkSync(at);
    } catch {
      break; // not a link: the name to create
    }
    at = path.resolve(path.dirname(at), target);
  }
  try {
    return path.join(fs.realpathSync(path.dirname(at)), path.basename(at));
  } catch {
    return at;
  }
}

/** WALNUT_INVALID_ARGUMENT (reason 'dbPath') unless `dbPath` is a non-empty string without NUL bytes. */
export function checkDbPath(dbPath: unknown): void {
  if (typeof dbPath !== 'string' || dbPath === '' || dbPath.includes('\0')) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `the database path must be a non-empty string without NUL bytes, not ${typeof dbPath === 'string' ? JSON.stringify(dbPath) : typeof dbPath}`, { reason: 'dbPath' });
  }
}

/**
 * WALNUT_CANTOPEN (reason 'NotRegularFile') when the database or one of its companions (-wal,
 * -shm, ...) exists and is not a regular file (a FIFO, a directory, a socket, a device): opening
 * a FIFO to read it blocks until some process opens it to write, its preads fail (ESPIPE), and
 * SQLite cannot use the database while one is there either. A symbolic link is left to the opens
 * (O_NOFOLLOW refuses one where it must).
 */
export function requireRegularFiles(database: string | null, companions: readonly string[]): void {
  for (const file of database === null ? companions : [database, ...companions]) {
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(file, { throwIfNoEntry: false });
    } catch (e) {
      // a path the system cannot look up (ENAMETOOLONG past PATH_MAX, EACCES on a directory of
      // it): node:fs's raw error escaped (restore() of a 4 KiB path rejected with it)
      throw walnutError('WALNUT_CANTOPEN', `cannot open ${file}: ${(e as Error).message}`, { path: file, errno: (e as NodeJS.ErrnoException).errno, cause: e });
    }
    if (st === undefined || st.isFile() || st.isSymbolicLink()) continue;
    const kind = irregularKind(st);
    const what = file === database ? 'not a database' : 'remove it (opening it would block or fail)';
    throw walnutError('WALNUT_CANTOPEN', `${file} is not a regular file (${kind}): ${what}`, { path: file, reason: 'NotRegularFile' });
  }
}

/**
 * WALNUT_CANTOPEN (reason 'NotRegularFile') when the database path, links followed, names
 * something there that is not a regular file (`st`: its stat, when the caller has it already).
 * Needed before resolvedPath: a pipe or socket named through /dev/stdin or /proc/self/fd/N has
 * no real path (realpath gives /proc/PID/fd/pipe:[N]), so the checks on the resolved name found
 * nothing there and the open failed "No such file or directory" of that name (`cat app.db |
 * walnut checkpoint /dev/stdin`). What stat cannot look up is left to the opens, which report it.
 */
export function refuseIrregularDatabase(file: string, st?: fs.Stats): void {
  if (st === undefined) {
    try {
      st = fs.statSync(file, { throwIfNoEntry: false });
    } catch {
      return;
    }
  }
  if (st !== undefined && !st.isFile()) throw walnutError('WALNUT_CANTOPEN', `${file} is not a regular file (${irregularKind(st)}): not a database`, { path: file, reason: 'NotRegularFile' });
}

/** What a file that is not a regular file nor a link is, for a refusal's message. */
export function irregularKind(st: fs.Stats): string {
  return st.isFIFO() ? 'a FIFO' : st.isDirectory() ? 'a directory' : st.isSocket() ? 'a socket' : 'a device';
}

/** What SQLite and walnut keep beside a database `X`, as `X<suffix>` (the FEC sidecar is `X-wal-fec`). */
const COMPANION_SUFFIXES = ['-wal-fec', '-wal', '-shm', '-journal'] as const;

/**
 * WALNUT_INVALID_ARGUMENT (reason 'TargetIsCompanion') when `target` (a real path) is named as a
 * file of another database that is there (`restore app.ark app.db-wal`, `export -o app.db-wal`):
 * SQLite takes `X-wal` for X's WAL whatever it holds, so the next connection to X overwrites or
 * removes the file written there, and replacing a live X's -wal lost X's commits still in it.
 * X counts when it is a SQLite database or empty (an empty file is one to SQLite). `doing` names
 * the refused act in the message ("restore to app.db-wal").
 */
export function refuseCompanionName(target: string, doing: string): void {
  for (const suffix of COMPANION_SUFFIXES) {
    if (!target.endsWith(suffix) || target.length === suffix.length) continue;
    const owner = target.slice(0, -suffix.length);
    if (!isDatabaseOrEmpty(owner)) continue;
    throw walnutError('WALNUT_INVALID_ARGUMENT', `refusing to ${doing}: that is the name of the ${suffix} of the database ${owner}, which SQLite would overwrite or remove; choose another name`, { path: target, reason: 'TargetIsCompanion' });
  }
}

function isDatabaseOrEmpty(file: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK); // a FIFO is no database: never wait for a writer
  } catch {
    return false;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return false;
    if (st.size === 0) return true;
    const head = Buffer.alloc(DB_HEADER_SIZE);
    const got = fs.readSync(fd, head, 0, head.length, 0);
    return (got >= 16 && hasDbMagic(head)) || dbHeaderThroughWal(file, () => head.subarray(0, fs.readSync(fd, head, 0, head.length, 0))).header !== null; // a torn header under the WAL's page 1 is still that database
  } finally {
    fs.closeSync(fd);
  }
}
