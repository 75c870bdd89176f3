/**
 * io/restore-asides.ts — the names a restore (export/restore.ts) owns beside its target, and
 * settling what a restore that died left there, so that no crash ever leaves a database beside
 * another database's -wal or without its own.
 *
 * A restore to `<dir>/<name>` builds the new database in `<dir>/.<name>.restore-<12 hex>` (its
 * temporary file: created O_EXCL, an exclusive OFD lock on its byte 0 from before its first
 * byte is written until it is renamed or removed). To replace a database it then:
 *   1. renames the old database's -wal, -journal, -shm and -wal-fec to the temporary file's
 *      name plus `.aside` and the same suffix (its asides: `.<name>.restore-<hex>.aside-wal`,
 *      ...; never SQLite's own names for companions of the temporary file), syncs the directory;
 *   2. renames the temporary file over `<name>` (the one atomic step: old database before it,
 *      new one after), syncs the directory;
 *   3. removes the asides.
 * The temporary file's name therefore tells which database `<name>` is: while it exists the
 * rename has not happened, and the asides are the companions of the database at `<name>`; once
 * it is gone they belong to a database that was replaced. So after a crash (settleRestores):
 *  - a temporary file nobody holds the lock of (its restore died), still the file at its name
 *    once its lock is won (a restore releases it only after its rename: a lock won on a file
 *    opened just before that is the new database's), gets its asides renamed back
 *    to their names (never over a file there: that one stays, and so do the aside and the
 *    temporary file, for a person to look at), the directory synced, and only then is the
 *    temporary file removed (when it is not empty, or older than a minute: an empty one may be
 *    a live restore's between its create and its lock);
 *  - an aside whose temporary file is gone is the replaced database's, and is removed;
 *  - a file at a temporary file's name that has a -wal, -shm or -journal of its own is a
 *    database someone opened there (another tool's hidden file, or a dead restore's file
 *    opened with sqlite3): left alone, with them.
 * A restore that fails after step 1 puts the asides back the same way before it removes its
 * temporary file. Every restore settles its target first, and so does every open of a database
 * (WalIndex.open), before either looks at the companions.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { WalnutFile } from './file';

/**
 * The files SQLite and walnut keep beside a database, by suffix: -wal, the rollback -journal, the
 * -shm and walnut's FEC sidecar (fec/writer.ts sidecarPathOf: the -wal's name + '-fec').
 */
export const COMPANION_SUFFIXES = ['-wal', '-journal', '-shm', '-wal-fec'] as const;

/** What SQLite itself keeps beside a database it opened (no walnut restore makes these for its temporary file). */
const SQLITE_OWN_SUFFIXES = ['-wal', '-journal', '-shm'] as const;

/** The name of restore's temporary files for `target`, less their 12 random hex digits. */
export const temporaryPrefix = (target: string): string => `.${path.basename(target)}.restore-`;

const ABANDONED_EMPTY_MS = 60_000;

/**
 * Between a temporary file's name and an aside's suffix: `.<name>.restore-<hex>.aside-wal`, never
 * `.<name>.restore-<hex>-wal`, which is what SQLite names the -wal of a database at the temporary
 * file's name (another tool's hidden file so named, or a dead restore's file opened with sqlite3
 * to look inside): taken for an aside, that -wal was linked over the target's, replaying
 * another database's pages over it, and the file it belonged to removed.
 */
const ASIDE_INFIX = '.aside';

/** The name the companion of `suffix` has aside, for the restore whose temporary file is `tmp`. */
export const asideName = (tmp: string, suffix: string): string => `${tmp}${ASIDE_INFIX}${suffix}`;
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Step 1 of a replacement: each companion of `target` that exists renamed to `tmp` + its suffix,
 * each suffix pushed on `moved` once renamed; a failure part-way leaves the ones moved so far
 * moved (the caller puts them back: moveBack).
 */
export function moveAside(target: string, tmp: string, moved: string[]): void {
  for (const suffix of COMPANION_SUFFIXES) {
    if (fs.lstatSync(`${target}${suffix}`, { throwIfNoEntry: false }) === undefined) continue;
    fs.renameSync(`${target}${suffix}`, asideName(tmp, suffix));
    moved.push(suffix);
  }
}

/**
 * Renames the asides of `tmp` back to `target`'s companions; never over a file that is there (a
 * link, then the aside's name removed; where links are not supported, a rename once the name
 * is free). True when every aside went back.
 */
export function moveBack(target: string, tmp: string): boolean {
  let all = true;
  for (const suffix of COMPANION_SUFFIXES) {
    const aside = asideName(tmp, suffix);
    const home = `${target}${suffix}`;
    const st = fs.lstatSync(aside, { throwIfNoEntry: false });
    if (st === undefined) continue;
    try {
      fs.linkSync(aside, home);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const there = fs.lstatSync(home, { throwIfNoEntry: false });
      if (code === 'EEXIST' && there !== undefined && there.ino === st.ino && there.dev === st.dev) {
        // (linked back already, by a settle that stopped before removing the aside's name)
      } else if (code !== 'EEXIST' && there === undefined) {
        fs.renameSync(aside, home); // a file system without hard links
        continue;
      } else {
        all = false; // a file at the companion's name: neither is removed
        continue;
      }
    }
    fs.unlinkSync(aside);
  }
  return all;
}

/** Removes the asides of `tmp` (the database they belonged to was replaced). */
export function removeAsides(tmp: string): void {
  for (const suffix of COMPANION_SUFFIXES) fs.rmSync(asideName(tmp, suffix), { force: true });
}

/**
 * Settles what restores to `target` that died left beside it (the header): asides back where
 * their temporary file says the rename did not happen, removed where it did, abandoned
 * temporary files removed. `own`: this restore's temporary file, left alone. Best effort for
 * what cannot be opened or removed; a failure to put an aside back keeps its temporary file.
 */
export function settleRestores(target: string, own: string | null = null): void {
  const dir = path.dirname(target);
  const prefix = temporaryPrefix(target);
  const temporary = new RegExp(`^${escapeRegExp(prefix)}[0-9a-f]{12}$`);
  const asideOf = new RegExp(`^(${escapeRegExp(prefix)}[0-9a-f]{12})${escapeRegExp(ASIDE_INFIX)}(${COMPANION_SUFFIXES.map(escapeRegExp).join('|')})$`);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  if (!names.some((n) => n.startsWith(prefix))) return;
  for (const name of names) {
    if (!temporary.test(name)) continue;
    const tmp = path.join(dir, name);
    if (tmp !== own) settleTemporary(target, tmp, names.some((n) => asideOf.exec(n)?.[1] === name));
  }
  for (const name of names) {
    const m = asideOf.exec(name);
    if (m === null) continue;
    const tmp = path.join(dir, m[1]!);
    // (looked at now: a temporary file settled above may have been removed, with its asides back)
    try {
      if (tmp !== own && fs.lstatSync(tmp, { throwIfNoEntry: false }) === undefined) fs.rmSync(path.join(dir, name), { force: true });
    } catch {
      // left as it is (a directory that takes no change: nothing here can be settled)
    }
  }
}

/** One temporary file of a restore to `target`: when its restore is dead, its asides back, then it removed. */
function settleTemporary(target: string, tmp: string, hasAsides: boolean): void {
  let f: WalnutFile;
  try {
    f = WalnutFile.openSync(tmp); // no O_CREAT; a symbolic link is refused, not followed
  } catch {
    return;
  }
  try {
    // a file at that name with SQLite companions of its own is a database someone opened there
    // (another tool's, or a dead restore's file opened with sqlite3): not a restore's to settle
    if (SQLITE_OWN_SUFFIXES.some((suffix) => fs.lstatSync(`${tmp}${suffix}`, { throwIfNoEntry: false }) !== undefined)) return;
    if (!f.tryLock(0, 1, 'exclusive')) return; // a live restore's
    // Still the file at that name? A restore keeps its lock until after it renamed the file over
    // the target, so a lock won after that is the NEW database's, opened here just before the
    // rename: its restore did not die, and the asides are the replaced database's (putting them
    // back would set the old -wal or hot -journal beside the new database, for sqlite3 to replay)
    if (!sameFile(fs.lstatSync(tmp, { throwIfNoEntry: false }), fs.fstatSync(f.fd))) return;
    if (hasAsides) {
      if (!moveBack(target, tmp)) return;
      WalnutFile.syncDirectorySync(path.dirname(target)); // back before the temporary file goes
    }
    const st = fs.fstatSync(f.fd);
    if (st.isFile() && (hasAsides || st.size > 0 || Date.now() - st.mtimeMs > ABANDONED_EMPTY_MS)) fs.rmSync(tmp, { force: true });
  } catch {
    // left as it is
  } finally {
    f.closeSync();
  }
}

/** Do two stats name one file (device and inode)? False when the first is missing. */
function sameFile(a: fs.Stats | undefined, b: fs.Stats): boolean {
  return a !== undefined && a.dev === b.dev && a.ino === b.ino;
}
