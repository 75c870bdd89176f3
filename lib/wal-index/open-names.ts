/**
 * wal-index/open-names.ts — one database file, one name: the rule that a database file is open
 * (by walnut) under a single path at a time.
 *
 * The -wal and -shm are found by the database's name, so a second name of the same file (a hard
 * link, or the file renamed while open) is a second WAL and wal-index for the same pages:
 * commits through each are invisible to the other, and the checkpoints of both write into the
 * one file, each over pages the other's WAL holds newer (SQLite has the same flaw and only logs
 * "multiple links"). An open under a second name while the first is in use is refused
 * (WALNUT_CANTOPEN, reason HardLink), before it creates anything beside the new name.
 *
 * A name is its directory (dev:ino) and base name, not the path's text: that is what the -wal
 * and -shm are found by. One directory reached by two paths (a bind mount, or one volume mounted
 * at /data in one container and /srv/data in another; SQLite opens it from both, one WAL) is
 * one name; the real paths differ, and as the key they refused such an open (WALNUT_CANTOPEN
 * HardLink where walnut had opened it before).
 *
 * Two records say which names are in use:
 *  - openNames: this thread's connections, per file (dev:ino), with their name and count (the
 *    error can name the other path);
 *  - NAME_LOCK bytes of the database file, for other threads and processes: each connection holds
 *    a shared OFD lock on the byte NAME_LOCK_FIRST + hash(name) % NAME_LOCK_SIZE on its database
 *    descriptor for as long as the descriptor is open (it goes with the descriptor: a killed
 *    process holds nothing). An open asks the kernel (F_OFD_GETLK) whether any other byte of
 *    the range is held: another connection has the file open under another name. Two names
 *    that hash to one byte are not told apart (1 in NAME_LOCK_SIZE): then, as before, both open.
 *    Two opens under two names at the same moment may both be refused (each sees the other's
 *    byte), never both let in.
 *
 * `walnut inspect` reports the bytes held (heldNames), telling the inspected path's own from
 * another name's, and the close turn.
 *
 * The bytes lie in SQLite's lock-byte page region past walnut's close-turn byte, where SQLite
 * locks nothing (its PENDING, RESERVED and SHARED bytes end at CLOSE_TURN_BYTE - 1); locks are
 * advisory and never touch the file's data, whatever its page size or length.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { walnutError } from '../errors';
import { DB_LOCK } from '../format/db-header';
import type { LockHolder, WalnutFile } from '../io/file';

/** The database file's byte just past SQLite's SHARED range: walnut's close turn (WalIndex#takeCloseTurnLock). */
export const CLOSE_TURN_BYTE = DB_LOCK.SHARED_FIRST + DB_LOCK.SHARED_SIZE;
/** The bytes whose shared locks say under which names walnut connections have the file open. */
export const NAME_LOCK_FIRST = CLOSE_TURN_BYTE + 1;
export const NAME_LOCK_SIZE = 4096;

/** This thread's connections per database file (WalIndex#fileKey): the name they use (nameOf), its path, and how many. */
const openNames = new Map<string, { name: string; dbPath: string; connections: number }>();

/**
 * Counts a connection to `fileKey` (dev:ino of `db`) under `dbPath` and takes the name's lock
 * byte on `db`; WALNUT_CANTOPEN (reason HardLink) when the file is open under another name, here
 * or in another thread or process (nothing counted or kept then; the byte goes with `db`'s close).
 */
export function claimName(db: WalnutFile, fileKey: string, dbPath: string): void {
  const name = nameOf(dbPath);
  const open = openNames.get(fileKey);
  if (open !== undefined && open.name !== name) {
    throw walnutError('WALNUT_CANTOPEN', `the database file is open in this process as ${open.dbPath} (a hard link, or renamed since): its -wal and -shm under this name would be a second WAL of the same file`, { path: dbPath, reason: 'HardLink' });
  }
  const own = NAME_LOCK_FIRST + (nameHash(name) % NAME_LOCK_SIZE);
  // (a byte nobody can hold exclusively: only shared locks are ever taken on this range)
  if (db.tryLock(own, 1, 'shared')) {
    const before = own - NAME_LOCK_FIRST;
    const after = NAME_LOCK_FIRST + NAME_LOCK_SIZE - own - 1;
    // 'exclusive' asks about every lock, shared ones too; this descriptor's own never conflict
    const other = (before > 0 ? db.lockHolder(NAME_LOCK_FIRST, before, 'exclusive') : null) ?? (after > 0 ? db.lockHolder(own + 1, after, 'exclusive') : null);
    if (other !== null) {
      db.unlock(own, 1);
      const who = other.pid > 0 ? `process ${other.pid}` : 'another walnut connection (a thread or process)';
      throw walnutError('WALNUT_CANTOPEN', `the database file is open under another name by ${who} (a hard link, or renamed since): its -wal and -shm under this name would be a second WAL of the same file (walnut inspect lists the names' bytes held, openNames)`, { path: dbPath, reason: 'HardLink' });
    }
  }
  if (open === undefined) openNames.set(fileKey, { name, dbPath, connections: 1 });
  else open.connections++;
}

/** Name bytes of the database file some connection holds (heldNames). */
export interface HeldName {
  /** The first byte's offset in the database file (as /proc/locks and /proc/PID/fdinfo name it). */
  byte: number;
  /** Bytes held from there: 1 for walnut's connections (another tool's lock may span more). */
  length: number;
  /** The byte is the name asked about's: connections open under that name (or one hashing alike, 1 in NAME_LOCK_SIZE). */
  thisName: boolean;
  holder: LockHolder;
}

/**
 * The name bytes of `db` (the database file, under `dbPath`) held by any connection, this
 * process's included, in byte order: a byte not `dbPath`'s means the file is open under
 * another name, and an open under `dbPath` is refused (HardLink). Read only, and with a few
 * F_OFD_GETLK calls (WalnutFile.lockHolders), not one per byte.
 */
export function heldNames(db: WalnutFile, dbPath: string): HeldName[] {
  const own = NAME_LOCK_FIRST + (nameHash(nameOf(dbPath)) % NAME_LOCK_SIZE);
  return db.lockHolders(NAME_LOCK_FIRST, NAME_LOCK_SIZE, 'exclusive').map((holder) => ({ byte: holder.start, length: holder.length, thisName: holder.start === own && holder.length === 1, holder }));
}

/** One connection to `fileKey` is gone (its lock byte goes with its database descriptor). */
export function releaseName(fileKey: string): void {
  const open = openNames.get(fileKey);
  if (open !== undefined && --open.connections === 0) openNames.delete(fileKey);
}

/**
 * `dbPath`'s name as the -wal and -shm are found by it: its directory's dev:ino and its base
 * name, the same in every process and mount namespace that reaches that directory entry.
 */
function nameOf(dbPath: string): string {
  let dir: fs.BigIntStats;
  try {
    dir = fs.statSync(path.dirname(dbPath), { bigint: true });
  } catch (e) {
    throw walnutError('WALNUT_CANTOPEN', `cannot open database ${dbPath}: its directory: ${(e as Error).message}`, { path: dbPath, cause: e });
  }
  return `${dir.dev}:${dir.ino}/${path.basename(dbPath)}`;
}

/** FNV-1a (32-bit) of the name's UTF-16 code units: the same name gives the same byte in every process. */
function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
