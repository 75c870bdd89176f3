/**
 * io/restore-asides.ts — the names a restore (export/restore.ts) owns beside its target, the
 * marker that lists them, and settling what a restore that died left there, so that no crash
 * ever leaves a database beside another database's -wal or without its own.
 *
 * A restore to `<dir>/<name>` first registers in the target's marker, `<dir>/.<name>.restore-asides`
 * (a fixed name: an open looks for it with one stat, never a listing of the directory, which
 * cost every open O(directory size): 265 ms beside 100,000 files). The marker is the line
 * `walnut restore-asides 1` then one 13-byte entry per restore (its temporary file's 12 random hex
 * digits and a newline), written under an exclusive OFD lock on the marker's byte 0, synced (and the
 * directory) before the temporary file exists; the restore holds an
 * exclusive OFD lock on its entry's 13 bytes until it has finished (or died: the lock goes with
 * the process). It builds the new database in `<dir>/.<name>.restore-<hex>` (its temporary file:
 * created O_EXCL, an exclusive OFD lock on its byte 0 too, which walnut before the marker reads),
 * and to replace a database:
 *   1. renames the old database's -wal, -journal, -shm and -wal-fec to the temporary file's
 *      name plus `.aside` and the same suffix (its asides: `.<name>.restore-<hex>.aside-wal`,
 *      ...; never SQLite's own names for companions of the temporary file), syncs the directory;
 *   2. renames the temporary file over `<name>` (the one atomic step: old database before it,
 *      new one after), syncs the directory;
 *   3. removes the asides, releases its entry and settles the marker (below), which removes it.
 * The temporary file's name therefore tells which database `<name>` is: while it exists the
 * rename has not happened, and the asides are the companions of the database at `<name>`; once
 * it is gone they belong to a database that was replaced. So (settleRestores), under the
 * marker's byte-0 lock, for each entry whose lock can be taken (its restore finished or died):
 *  - its temporary file still there: its asides renamed back to their names (never over a file
 *    there: that one stays, and so do the aside and the temporary file, for a person to look
 *    at), the directory synced, and only then the temporary file removed; a temporary file with
 *    a -wal, -shm or -journal of its own is a database someone opened there (a dead restore's
 *    file opened with sqlite3): left alone, with them and the asides;
 *  - its temporary file gone: its asides are the replaced database's, and are removed;
 * and once every entry is settled (none live, nothing left) the directory is synced (those
 * removals durable first) and the marker removed; while some entry must stay, the settled
 * entries after the last one needed are cut off (the marker does not grow by one entry per
 * restore behind an entry that stays). Only names the marker lists are ever touched:
 * a file that merely looks like a temporary file (another tool's `.<name>.restore-<12 hex>`) is
 * never removed. A marker whose first bytes are not walnut's is another tool's file: left alone
 * (a restore to that target is refused; an open ignores it); so is one that is not a regular
 * file (a FIFO is never waited on: read-only verbs open it O_NONBLOCK) or is larger than any
 * walnut writes (MARKER_MAX_BYTES: never read whole). An aside that is not a regular file is
 * never put back (restore moves aside only regular files). An aside's name 36 bytes longer than
 * the database's may not fit the file system (ENAMETOOLONG): no such file exists (lstatIfThere).
 * Every open of a database (WalIndex.open) settles its marker when there is one (one lstat when
 * there is none); every restore does too, and also settles, by listing the directory, asides
 * left by walnut before the marker (legacySettle: a temporary file with asides of the same
 * name, nobody holding its lock, still at its name, gets them back and is removed; asides whose
 * temporary file is gone are removed; a temporary file without asides is never removed: it
 * cannot be told from another tool's). Read-only verbs (inspect, verify) only report
 * (pendingRestores), changing nothing.
 */
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import * as path from 'node:path';

import { walnutError } from '../errors';
import { noSuchFile, WalnutFile } from './file';

/**
 * The files SQLite and walnut keep beside a database, by suffix: -wal, the rollback -journal, the
 * -shm, walnut's FEC sidecar (fec/writer.ts sidecarPathOf: the -wal's name + '-fec') and a
 * replica's position file (replicate/position.ts ReplicaPosition.pathOf: '-replica'), which
 * describes the database it sits beside: left beside a restored one, a replica opened there
 * resumed from a position that was not the new file's.
 */
export const COMPANION_SUFFIXES = ['-wal', '-journal', '-shm', '-wal-fec', '-replica'] as const;

/** What SQLite itself keeps beside a database it opened (no walnut restore makes these for its temporary file). */
const SQLITE_OWN_SUFFIXES = ['-wal', '-journal', '-shm'] as const;

/** The name of restore's temporary files for `target`, less their 12 random hex digits. */
export const temporaryPrefix = (target: string): string => `.${path.basename(target)}.restore-`;

/** The marker of `target`'s restores (the header): `<dir>/.<name>.restore-asides`. */
export const markerPathOf = (target: string): string => path.join(path.dirname(target), `${temporaryPrefix(target)}asides`);

const { EEXIST, ENAMETOOLONG } = osConstants.errno;

/**
 * lstat, or undefined when there is nothing at `p`: also when its name is too long for the file
 * system (ENAMETOOLONG), as an aside's is beside a database whose own name is 220-255 bytes long
 * (`.<name>.restore-<hex>.aside-journal` is 36 bytes longer): no such file can exist. Taken for
 * an error, it failed a restore that had replaced the database (exit 2, WALNUT_IO) and every
 * settle of its marker after it, which then stayed for good.
 */
function lstatIfThere(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p, { throwIfNoEntry: false });
  } catch (e) {
    if (Math.abs((e as { errno?: number }).errno ?? 0) === ENAMETOOLONG) return undefined;
    throw e;
  }
}

/** Removes the file at `p` when there is one (nothing to do for a name too long to exist: lstatIfThere). */
function removeIfThere(p: string): void {
  if (lstatIfThere(p) !== undefined) fs.rmSync(p, { force: true });
}

/** The marker's first bytes: what makes it walnut's. */
const MARKER_MAGIC = Buffer.from('walnut restore-asides 1\n');
/** One entry: a temporary file's 12 hex digits and a newline. */
const ENTRY_BYTES = 13;
/**
 * The largest marker walnut writes, with room to spare (80,000 entries; each restore's goes with
 * it, so only restores whose files could not be settled stay listed); a larger file at the name
 * is not walnut's. Read whole, a 3 GB one took every open of the database 25 s and 3 GB of memory.
 */
const MARKER_MAX_BYTES = MARKER_MAGIC.length + 80_000 * ENTRY_BYTES;
/** How long a settle or a registration waits for the marker's byte-0 lock (held for a few syncs at most). */
const MARKER_LOCK_WAIT_MS = 2000;

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
 * moved (the caller puts them back: moveBack). Suffixes in `keep` stay where they are.
 */
export function moveAside(target: string, tmp: string, moved: string[], keep: ReadonlySet<string> = new Set()): void {
  for (const suffix of COMPANION_SUFFIXES) {
    if (keep.has(suffix) || lstatIfThere(`${target}${suffix}`) === undefined) continue;
    fs.renameSync(`${target}${suffix}`, asideName(tmp, suffix));
    moved.push(suffix);
  }
}

/**
 * Renames the asides of `tmp` back to `target`'s companions; never over a file that is there (a
 * link, then the aside's name removed; where links are not supported, a rename once the name
 * is free), nor one that is not a regular file (a restore moves aside only regular files:
 * restore.ts refuses companions of any other kind; a symbolic link or directory so named was
 * put back as the database's -journal, after which neither sqlite3 nor walnut opened it). True
 * when every aside went back.
 */
export function moveBack(target: string, tmp: string): boolean {
  let all = true;
  for (const suffix of COMPANION_SUFFIXES) {
    const aside = asideName(tmp, suffix);
    const home = `${target}${suffix}`;
    const st = lstatIfThere(aside);
    if (st === undefined) continue;
    if (!st.isFile()) {
      all = false; // (not what a restore moves: left for a person to look at)
      continue;
    }
    try {
      fs.linkSync(aside, home);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const there = lstatIfThere(home);
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
  for (const suffix of COMPANION_SUFFIXES) removeIfThere(asideName(tmp, suffix));
}

/** A restore's place in its target's marker: its temporary file's path, held live until release(). */
export interface RestoreRegistration {
  /** The temporary file to create (O_EXCL) for the new database. */
  readonly temporary: string;
  /** Gives up the entry's lock (the restore finished, its files settled or left to settle). */
  release(): void;
}

/**
 * Registers a restore to `target` in its marker (the header), durably, before its temporary file
 * or any aside exists: the entry `hex` appended under the marker's byte-0 lock, its 13 bytes
 * locked for as long as the registration is held, the marker and the directory synced. WALNUT_CANTOPEN (reason RestoreMarker) when the marker is not walnut's or
 * cannot be written; WALNUT_BUSY when its lock stays held.
 */
export function registerRestore(target: string, hex: string): RestoreRegistration {
  const marker = markerPathOf(target);
  const dir = path.dirname(target);
  const { file: f } = lockedMarker(target, true);
  /** Where this registration's entry goes, once it is being written (-1: not yet; null: the marker is not walnut's, not to be touched). */
  let entryAt: number | null = null;
  try {
    const content = readMarker(f);
    if (content === null || !isOurs(content)) throw notWalnuts(target, marker);
    entryAt = -1;
    // a torn header or entry is a dead registration's (none is written without this lock)
    let size = content.length < MARKER_MAGIC.length ? 0 : MARKER_MAGIC.length + Math.floor((content.length - MARKER_MAGIC.length) / ENTRY_BYTES) * ENTRY_BYTES;
    if (size !== content.length) f.truncateSync(size);
    if (size === 0) {
      f.writeSync(MARKER_MAGIC, 0, MARKER_MAGIC.length, 0);
      size = MARKER_MAGIC.length;
    }
    if (!f.tryLock(size, ENTRY_BYTES, 'exclusive')) throw walnutError('WALNUT_BUSY', `the entry at ${size} of ${marker} is locked`, { path: marker, reason: 'RestoreMarker' });
    const entry = Buffer.from(`${hex}\n`);
    entryAt = size;
    f.writeSync(entry, 0, ENTRY_BYTES, size);
    f.fsyncSync();
    // the marker's name durable before any temporary file's: always, not only when this call
    // created it (its creator may have died before its own directory sync)
    WalnutFile.syncDirectorySync(dir);
    f.unlock(0, 1);
  } catch (e) {
    if (entryAt !== null) undoRegistration(f, marker, entryAt);
    f.closeSync();
    throw e;
  }
  return {
    temporary: path.join(dir, `${temporaryPrefix(target)}${hex}`),
    release: () => {
      if (!f.closed) f.closeSync();
    },
  };
}

/**
 * A registration that failed (a full disk, a failed sync: its restore is refused) takes back
 * what it wrote, its byte-0 lock still held: its entry, from `entryAt` (-1: none yet), and the
 * marker itself when no entry is left in it (an empty marker, or its magic alone, as one made by
 * this call; left beside the target it was a hidden file listing nothing until some later walnut
 * open or restore removed it). Best effort: what stays is settled as a dead registration's.
 */
function undoRegistration(f: WalnutFile, marker: string, entryAt: number): void {
  try {
    if (entryAt >= 0) f.truncateSync(entryAt);
    if (fs.fstatSync(f.fd).size > MARKER_MAGIC.length) return; // other restores' entries
    const st = fs.lstatSync(marker, { throwIfNoEntry: false });
    const own = fs.fstatSync(f.fd);
    if (st !== undefined && st.dev === own.dev && st.ino === own.ino) fs.unlinkSync(marker); // (a waiter for its lock then finds the name gone: lockedMarker)
  } catch {
    // left to settleRestores
  }
}

/**
 * The marker `marker` opened, its byte-0 lock held, still the file at that name (a settle that
 * removed it meanwhile leaves an unlinked file to whoever waited for its lock: opened again);
 * null when there is none (`create` false), when it cannot be opened or its lock stays held.
 */
function lockedMarker(target: string, create: true): { file: WalnutFile };
function lockedMarker(target: string, create: false): { file: WalnutFile } | null;
function lockedMarker(target: string, create: boolean): { file: WalnutFile } | null {
  const marker = markerPathOf(target);
  for (let attempt = 0; ; attempt++) {
    let f: WalnutFile;
    try {
      f = WalnutFile.openSync(marker); // no O_CREAT; a symbolic link is refused, not followed
    } catch (e) {
      if (!create) return null;
      if (!noSuchFile(e)) {
        // a symbolic link or a directory at the name is another's (not "cannot create a file in the directory")
        const st = lstatIfThere(marker);
        if (st !== undefined && !st.isFile()) throw notWalnuts(target, marker, st.isSymbolicLink() ? ' (a symbolic link)' : st.isDirectory() ? ' (a directory)' : '');
        throw markerFailure(marker, e);
      }
      try {
        f = WalnutFile.openSync(marker, { create: true, exclusive: true, mode: 0o644 });
      } catch (e2) {
        if (attempt < 5 && Math.abs((e2 as { errno?: number }).errno ?? 0) === EEXIST) continue; // another restore made it just now
        throw markerFailure(marker, e2);
      }
    }
    try {
      f.lockSync(0, 1, 'exclusive', MARKER_LOCK_WAIT_MS);
      const st = fs.lstatSync(marker, { throwIfNoEntry: false });
      const own = fs.fstatSync(f.fd);
      if (st !== undefined && st.dev === own.dev && st.ino === own.ino) return { file: f };
    } catch (e) {
      f.closeSync();
      if (!create) return null;
      throw e;
    }
    f.closeSync(); // removed (or replaced) while this waited: the one at the name now
    if (attempt >= 5) {
      if (!create) return null;
      throw walnutError('WALNUT_BUSY', `${marker} keeps being replaced`, { path: marker, reason: 'RestoreMarker' });
    }
  }
}

/** WALNUT_CANTOPEN for a restore to `target` whose marker's name another file has taken. */
function notWalnuts(target: string, marker: string, what = '') {
  return walnutError('WALNUT_CANTOPEN', `cannot restore to ${target}: ${marker} is not walnut's${what} (a restore records its temporary files there); move it away`, { path: marker, reason: 'RestoreMarker' });
}

function markerFailure(marker: string, e: unknown) {
  return walnutError('WALNUT_CANTOPEN', `cannot write ${marker} (where a restore records its temporary files): ${(e as Error).message}`, { path: marker, errno: (e as { errno?: number }).errno, reason: 'RestoreMarker', cause: e });
}

/**
 * A marker's content; null when the file is not a regular file (a FIFO, a device: another's) or
 * larger than any marker walnut writes (MARKER_MAX_BYTES), neither of which is read.
 */
function readMarker(f: WalnutFile): Buffer | null {
  const st = fs.fstatSync(f.fd);
  if (!st.isFile() || st.size > MARKER_MAX_BYTES) return null;
  return readAll(f, st.size);
}

function readAll(f: WalnutFile, size: number): Buffer {
  const b = Buffer.alloc(size);
  let got = 0;
  while (got < size) {
    const n = f.readSync(b, got, size - got, got);
    if (n === 0) break;
    got += n;
  }
  return b.subarray(0, got);
}

/** Walnut's marker: its magic (or the torn start of it, by a registration that died writing it). */
function isOurs(content: Buffer): boolean {
  const n = Math.min(content.length, MARKER_MAGIC.length);
  return content.subarray(0, n).equals(MARKER_MAGIC.subarray(0, n));
}

/** The entries of a marker's content: [byte offset, 12 hex digits]; a torn or foreign one skipped. */
function entriesOf(content: Buffer): [number, string][] {
  const out: [number, string][] = [];
  for (let at = MARKER_MAGIC.length; at + ENTRY_BYTES <= content.length; at += ENTRY_BYTES) {
    const line = content.toString('latin1', at, at + ENTRY_BYTES);
    if (/^[0-9a-f]{12}\n$/.test(line)) out.push([at, line.slice(0, 12)]);
  }
  return out;
}

/**
 * Settles what restores to `target` that died left beside it (the header): asides back where
 * their temporary file says the rename did not happen, removed where it did, abandoned
 * temporary files removed, then the marker once nothing is left. One lstat when there is no
 * marker. `legacy` (restore only): also what walnut before the marker left (legacySettle), by
 * listing the directory. Best effort for what cannot be opened or removed; a failure to put an
 * aside back keeps its temporary file (and the entry).
 */
export function settleRestores(target: string, options: { legacy?: boolean } = {}): void {
  const marker = markerPathOf(target);
  let there: boolean;
  try {
    there = fs.lstatSync(marker, { throwIfNoEntry: false }) !== undefined;
  } catch {
    there = false; // a directory that cannot be looked into: nothing here can be settled
  }
  if (there) settleMarker(target, marker);
  if (options.legacy === true) legacySettle(target);
}

function settleMarker(target: string, marker: string): void {
  const dir = path.dirname(target);
  let locked: { file: WalnutFile } | null;
  try {
    locked = lockedMarker(target, false);
  } catch {
    return;
  }
  if (locked === null) return;
  const f = locked.file;
  try {
    const content = readMarker(f);
    if (content === null || !isOurs(content)) return; // another tool's file at that name: not ours to read or remove
    let settled = true;
    /** Where the last entry still needed (a live restore's, or one not settled) ends. */
    let neededEnd = MARKER_MAGIC.length;
    for (const [at, hex] of entriesOf(content)) {
      if (!f.tryLock(at, ENTRY_BYTES, 'exclusive')) {
        settled = false; // a live restore's
        neededEnd = at + ENTRY_BYTES;
        continue;
      }
      try {
        if (!settleEntry(target, path.join(dir, `${temporaryPrefix(target)}${hex}`))) {
          settled = false;
          neededEnd = at + ENTRY_BYTES;
        }
      } finally {
        f.unlock(at, ENTRY_BYTES);
      }
    }
    if (!settled) {
      // the settled entries after the last one needed go (no live entry moves: registrations
      // append under the byte-0 lock held here): an entry that stays (files a person must look
      // at) no longer makes every later restore's entry stay with it, 13 bytes each, until the
      // marker outgrew MARKER_MAX_BYTES and every restore to the target was refused
      if (neededEnd < content.length) f.truncateSync(neededEnd);
      return;
    }
    WalnutFile.syncDirectorySync(dir); // what was removed, removed durably before the marker that lists it
    fs.unlinkSync(marker);
  } catch {
    // left as it is (a directory that takes no change: the next open or restore tries again)
  } finally {
    f.closeSync();
  }
}

/**
 * One finished or dead restore (its entry's lock won): true when nothing of it is left. Its
 * temporary file there: the rename did not happen (asides back, durably, then it removed);
 * gone: the asides are the replaced database's (removed).
 */
function settleEntry(target: string, tmp: string): boolean {
  const st = lstatIfThere(tmp);
  if (st === undefined) {
    removeAsides(tmp);
    return true;
  }
  if (!st.isFile()) return false; // (not what a restore makes: left for a person to look at)
  // a file at that name with SQLite companions of its own is a database someone opened there
  // (a dead restore's file opened with sqlite3): left alone, with them and the asides
  if (SQLITE_OWN_SUFFIXES.some((suffix) => lstatIfThere(`${tmp}${suffix}`) !== undefined)) return false;
  if (!moveBack(target, tmp)) return false;
  WalnutFile.syncDirectorySync(path.dirname(target)); // back before the temporary file goes
  fs.rmSync(tmp, { force: true });
  return true;
}

/** What a read-only verb reports of a restore to a database that is not settled (pendingRestores). */
export interface PendingRestore {
  /** The restore's temporary file (its path; it may be gone). */
  temporary: string;
  /** Its restore is running (holds its entry's or its temporary file's lock). */
  live: boolean;
  /** Whether its new file is in place: false while the temporary file is there (the old database's companions are aside). */
  renamed: boolean;
  /** The asides there now (paths). */
  asides: string[];
  /** What the next walnut open (or restore) does with it. */
  settle: string;
}

/**
 * The restores to `target` that are not settled, read without changing anything (inspect,
 * verify): those its marker lists that left something (a temporary file, asides), and, listing
 * the directory, asides and temporary files with asides left by walnut before the marker.
 */
export function pendingRestores(target: string): PendingRestore[] {
  const dir = path.dirname(target);
  const prefix = temporaryPrefix(target);
  const out: PendingRestore[] = [];
  const seen = new Set<string>();
  const marker = markerPathOf(target);
  let m: WalnutFile | null = null;
  try {
    m = WalnutFile.openSync(marker, { readOnly: true, nonBlocking: true }); // (a FIFO there: not waited on, for ever)
  } catch {
    m = null;
  }
  if (m !== null) {
    try {
      const content = readMarker(m);
      if (content !== null && isOurs(content)) {
        for (const [at, hex] of entriesOf(content)) {
          const tmp = path.join(dir, `${prefix}${hex}`);
          seen.add(tmp);
          const report = describePending(target, tmp, m.lockHolder(at, ENTRY_BYTES, 'exclusive') !== null);
          if (report !== null) out.push(report);
        }
      }
    } catch {
      // (an unreadable marker: nothing reported from it)
    } finally {
      m.closeSync();
    }
  }
  const asideOf = asidePattern(prefix);
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return out;
  }
  const legacy = new Set<string>();
  for (const name of names) {
    const match = asideOf.exec(name);
    if (match !== null && !seen.has(path.join(dir, match[1]!))) legacy.add(path.join(dir, match[1]!));
  }
  for (const tmp of legacy) {
    const report = describePending(target, tmp, temporaryLocked(tmp));
    if (report !== null) out.push(report);
  }
  return out;
}

function describePending(target: string, tmp: string, live: boolean): PendingRestore | null {
  const asides = COMPANION_SUFFIXES.map((s) => asideName(tmp, s)).filter((a) => lstatIfThere(a) !== undefined);
  const there = lstatIfThere(tmp) !== undefined;
  if (!there && asides.length === 0) return null;
  const name = path.basename(target);
  const settle = live
    ? 'a restore is running'
    : there
      ? `the rename did not happen: ${asides.length > 0 ? `${asides.map((a) => a.slice(asideName(tmp, '').length)).join(', ')} go back beside ${name}, then ` : ''}the temporary file is removed`
      : `${name} was replaced: the replaced database's ${asides.map((a) => a.slice(asideName(tmp, '').length)).join(', ')} are removed`;
  return { temporary: tmp, live, renamed: !there, asides, settle };
}

function asidePattern(prefix: string): RegExp {
  return new RegExp(`^(${escapeRegExp(prefix)}[0-9a-f]{12})${escapeRegExp(ASIDE_INFIX)}(${COMPANION_SUFFIXES.map(escapeRegExp).join('|')})$`);
}

/** Is `tmp`'s byte-0 lock held (its restore alive)? False when it cannot be opened. */
function temporaryLocked(tmp: string): boolean {
  let f: WalnutFile;
  try {
    f = WalnutFile.openSync(tmp, { readOnly: true, nonBlocking: true }); // (a FIFO there: not waited on)
  } catch {
    return false;
  }
  try {
    return f.lockHolder(0, 1, 'exclusive') !== null;
  } catch {
    return false;
  } finally {
    f.closeSync();
  }
}

/**
 * What restores of walnut before the marker left (they listed no marker): found by listing the
 * directory. A temporary file with asides whose lock can be taken (its restore died) and that
 * is still the file at its name once it is (a restore releases it only after its rename: a lock
 * won on a file opened just before that is the new database's) gets its asides back, durably,
 * then is removed; asides whose temporary file is gone are removed. A temporary file without
 * asides is left: nothing tells it from another tool's file of that name. Names the marker
 * lists are not looked at here (settleMarker's, and a live restore's are locked anyway).
 */
function legacySettle(target: string): void {
  const dir = path.dirname(target);
  const prefix = temporaryPrefix(target);
  const asideOf = asidePattern(prefix);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  const temporaries = new Set<string>();
  for (const name of names) {
    const m = asideOf.exec(name);
    if (m !== null) temporaries.add(m[1]!);
  }
  for (const name of temporaries) {
    const tmp = path.join(dir, name);
    try {
      if (fs.lstatSync(tmp, { throwIfNoEntry: false }) !== undefined) settleLegacyTemporary(target, tmp);
      // (looked at now: gone, or renamed over the target by a live restore meanwhile, its asides are the replaced database's)
      if (fs.lstatSync(tmp, { throwIfNoEntry: false }) === undefined) removeAsides(tmp);
    } catch {
      // left as it is (a directory that takes no change: nothing here can be settled)
    }
  }
}

/** A temporary file of walnut before the marker, with asides: when its restore is dead, its asides back, then it removed. */
function settleLegacyTemporary(target: string, tmp: string): void {
  let f: WalnutFile;
  try {
    f = WalnutFile.openSync(tmp); // no O_CREAT; a symbolic link is refused, not followed
  } catch {
    return;
  }
  try {
    if (SQLITE_OWN_SUFFIXES.some((suffix) => fs.lstatSync(`${tmp}${suffix}`, { throwIfNoEntry: false }) !== undefined)) return;
    if (!f.tryLock(0, 1, 'exclusive')) return; // a live restore's
    const st = fs.lstatSync(tmp, { throwIfNoEntry: false });
    const own = fs.fstatSync(f.fd);
    if (st === undefined || st.dev !== own.dev || st.ino !== own.ino || !own.isFile()) return;
    if (!moveBack(target, tmp)) return;
    WalnutFile.syncDirectorySync(path.dirname(target)); // back before the temporary file goes
    fs.rmSync(tmp, { force: true });
  } catch {
    // left as it is
  } finally {
    f.closeSync();
  }
}
