/**
 * io/file.ts — WalnutFile: positioned I/O, durability and byte-range locks on one descriptor.
 *
 * A thin typed wrapper over the addon's NativeFile. Async methods run on the addon's own I/O
 * thread, in submission order per environment (so a write queued before an fdatasync is on
 * disk when the fdatasync runs); `*Sync` methods run on the calling thread.
 *
 * Opening never follows a symbolic link at the last path component (O_NOFOLLOW, as SQLite
 * opens its files): a link planted where walnut expects its own file fails with
 * WALNUT_CANTOPEN, reason 'Symlink'; callers resolve the database path the user gave first
 * (realpath), and `followSymlinks: true` opts out. A file that cannot be opened as asked (not
 * there, no permission, a directory, a path through a file, a name too long) is WALNUT_CANTOPEN
 * too, with the open's errno (SQLite's SQLITE_CANTOPEN); an option open() does not take is
 * refused (WALNUT_INVALID_ARGUMENT, reason 'options').
 *
 * Locks are Linux OFD locks owned by this descriptor: closing another descriptor of the same
 * file never drops them, and two WalnutFiles on one file conflict like two processes would.
 * Closing never drops the classic POSIX locks of a SQLite library in this process
 * (better-sqlite3, node:sqlite), which any close(2) of the file would: while the process holds
 * such locks on the file, close() releases this descriptor's own locks and keeps it open,
 * parked for reuse by the next open of the file (native/fd_registry.h). Parked descriptors are
 * closed once those locks are gone, checked at every open and close and, while any is parked,
 * by a timer every second that does not keep the process alive.
 * The I/O thread never touches a caller's memory (native/file.h): async write/writev copy the
 * bytes when they are called, so the buffers are the caller's again at once; async read reads
 * into memory of its own and copies into the caller's buffer once done (a buffer detached
 * meanwhile gets nothing: WALNUT_INVALID_ARGUMENT, reason Detached). readLent/writevLent skip
 * the copy, for walnut's own memory that nobody changes or detaches until the promise settles
 * (export records, restore batches, FEC groups, pages read for a snapshot).
 * Async methods never throw: argument errors arrive as rejections too (without the extra
 * promise hops an `async` wrapper would add to every call). A lock that is held elsewhere is retried with SQLite's busy-handler backoff until `timeout`
 * milliseconds have passed, then WALNUT_BUSY; the async variant waits on timers and never
 * blocks the event loop.
 */
import { constants as osConstants } from 'node:os';

import { asInputError, readInput, describeValue } from '../arguments';
import { walnutError } from '../errors';
import { unknownOptionName } from '../option-names';
import { NativeFile, type Durability, type LockMode, type NativeFileHandle, type NativeLockHolder, type NativeOpenOptions } from '../native';
import { sleepSync } from './sleep-sync';

export type { Durability, LockMode, NativeLockHolder as LockHolder };

export interface OpenFileOptions extends NativeOpenOptions {}

/** SQLite's unix busy-handler delays (ms); the last one repeats. */
const BUSY_DELAYS = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100] as const;

function busyDelay(attempt: number): number {
  return BUSY_DELAYS[Math.min(attempt, BUSY_DELAYS.length - 1)]!;
}

/** Runs a native async call so that argument errors (thrown synchronously) become rejections. */
function rejecting<T>(call: () => Promise<T>): Promise<T> {
  try {
    return call();
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Runs a native writev: the addon reads the caller's array of buffers itself (each element once,
 * all of them before it looks at any buffer's bytes: native/file.cc), so an accessor of the
 * caller's that throws there reaches here as its raw error; it is the input's
 * (WALNUT_INVALID_ARGUMENT, reason 'buffers', the original as cause). The addon's own refusals
 * and OS errors are WalnutErrors and pass as they are.
 */
function buffersRead<T>(call: () => T): T {
  try {
    return call();
  } catch (e) {
    throw asInputError(e, 'buffers');
  }
}

/** How often parked descriptors are checked while there are any (see above). */
const SWEEP_INTERVAL_MS = 1000;
let sweeper: NodeJS.Timeout | null = null;

function sweepWhileParked(): void {
  if (sweeper !== null || NativeFile.pendingCloses() === 0) return;
  sweeper = setInterval(() => {
    if (NativeFile.sweepPendingCloses() > 0) return;
    clearInterval(sweeper!);
    sweeper = null;
  }, SWEEP_INTERVAL_MS);
  sweeper.unref();
}

function checkTimeout(timeout: number): void {
  if (!Number.isFinite(timeout) || timeout < 0) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', 'lock timeout must be a non-negative number of ms', {
      reason: 'timeout',
    });
  }
}

const OPEN_OPTIONS: readonly (keyof OpenFileOptions)[] = ['lane', 'create', 'readOnly', 'exclusive', 'truncate', 'mode', 'followSymlinks', 'nonBlocking', 'sameFileAs'];

/**
 * The options the addon gets: a plain copy, each value read once here. The addon must never meet
 * the caller's object: a getter (or Proxy trap) of it that threw inside the addon's reads left
 * an exception pending that the next N-API call turned into a fatal error of the process
 * (FATAL ERROR: Error::New napi_get_last_error_info). Here it is WALNUT_INVALID_ARGUMENT.
 */
function openOptionsCopy(options: OpenFileOptions): OpenFileOptions {
  readInput('options', () => refuseUnknownOpenOptions(options)); // (a Proxy's ownKeys trap may throw)
  if (typeof options !== 'object' || options === null) return options; // the addon refuses it
  const copy = readInput('options', () => {
    const o = options as Record<string, unknown>;
    const copy: Record<string, unknown> = {};
    for (const k of OPEN_OPTIONS) copy[k] = o[k];
    return copy;
  });
  // the addon reads these as truthy or not: { create: 'no' } created, { readOnly: null } opened
  // for writing (null is no "not given": option-names.ts)
  for (const k of BOOLEAN_OPEN_OPTIONS) {
    if (copy[k] !== undefined && typeof copy[k] !== 'boolean') throw walnutError('WALNUT_INVALID_ARGUMENT', `WalnutFile.open option ${k} must be true or false, not ${describeValue(copy[k])}`, { reason: k });
  }
  return copy as OpenFileOptions;
}

const BOOLEAN_OPEN_OPTIONS = ['create', 'readOnly', 'exclusive', 'truncate', 'followSymlinks', 'nonBlocking'] as const;

/** A name open() does not take is refused (option-names.ts): a misspelt `readonly` would open for writing. */
function refuseUnknownOpenOptions(options: unknown): void {
  if (typeof options !== 'object' || options === null) return; // the addon refuses what is not an object
  const key = unknownOptionName(options, OPEN_OPTIONS);
  if (key !== undefined) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `WalnutFile.open takes the options ${OPEN_OPTIONS.join(', ')}, not ${JSON.stringify(key)}`, { reason: 'options' });
  }
}

/** Internal: the native handle of a WalnutFile, for lib/wal's native frame calls. */
export const nativeHandleOf = (file: WalnutFile): NativeFileHandle => handles.get(file)!;

/** `e`, from WalnutFile.open/openSync, says there is no such file (ENOENT; the addon's errno may come negated). */
export function noSuchFile(e: unknown): boolean {
  return Math.abs(Number((e as { errno?: unknown } | null)?.errno)) === osConstants.errno.ENOENT;
}
const handles = new WeakMap<WalnutFile, NativeFileHandle>();

export class WalnutFile {
  readonly #handle: NativeFileHandle;

  private constructor(handle: NativeFileHandle) {
    this.#handle = handle;
    handles.set(this, handle);
  }

  static async open(path: string, options: OpenFileOptions = {}): Promise<WalnutFile> {
    return new WalnutFile(await NativeFile.open(path, openOptionsCopy(options)));
  }

  static openSync(path: string, options: OpenFileOptions = {}): WalnutFile {
    return new WalnutFile(new NativeFile(path, openOptionsCopy(options)));
  }

  /** fsync a directory, making a newly created or renamed entry in it durable. */
  static async syncDirectory(path: string): Promise<void> {
    return NativeFile.syncDirectory(path);
  }

  static syncDirectorySync(path: string): void {
    NativeFile.syncDirectorySync(path);
  }

  get path(): string {
    return this.#handle.path;
  }
  get fd(): number {
    return this.#handle.fd;
  }
  get closed(): boolean {
    return this.#handle.closed;
  }

  /**
   * Reads up to `length` bytes at `position`; fewer only at end of file. The bytes reach
   * `buffer` once the read is done (header comment): a buffer detached meanwhile fails it.
   */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return rejecting(() => this.#handle.read(buffer, offset, length, position));
  }
  /**
   * @internal read() into `buffer` on the I/O thread: for walnut's own memory, which nobody
   * changes or detaches until the promise settles (header comment).
   */
  readLent(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return rejecting(() => this.#handle.readLent(buffer, offset, length, position));
  }
  readSync(buffer: Uint8Array, offset: number, length: number, position: number): number {
    return this.#handle.readSync(buffer, offset, length, position);
  }
  /** Writes all `length` bytes at `position` or fails; never a silent short write. The bytes are copied when it is called. */
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return rejecting(() => this.#handle.write(buffer, offset, length, position));
  }
  writeSync(buffer: Uint8Array, offset: number, length: number, position: number): number {
    return this.#handle.writeSync(buffer, offset, length, position);
  }
  /**
   * Writes the buffers back to back from `position` (their bytes copied into one buffer when it
   * is called, then one pwrite), then, with durability 'data' or 'full', fdatasync or fsync in
   * the same I/O-thread operation. On failure `syscall` says which step failed.
   */
  writev(buffers: readonly Uint8Array[], position: number, durability: Durability = 'none'): Promise<number> {
    return rejecting(() => buffersRead(() => this.#handle.writev(buffers, position, durability)));
  }
  /**
   * @internal writev() straight from the buffers (pwritev, no copy): for walnut's own memory,
   * which nobody changes or detaches until the promise settles (header comment).
   */
  writevLent(buffers: readonly Uint8Array[], position: number, durability: Durability = 'none'): Promise<number> {
    return rejecting(() => buffersRead(() => this.#handle.writevLent(buffers, position, durability)));
  }
  writevSync(buffers: readonly Uint8Array[], position: number, durability: Durability = 'none'): number {
    return buffersRead(() => this.#handle.writevSync(buffers, position, durability));
  }
  fsync(): Promise<void> {
    return rejecting(() => this.#handle.fsync());
  }
  fsyncSync(): void {
    this.#handle.fsyncSync();
  }
  fdatasync(): Promise<void> {
    return rejecting(() => this.#handle.fdatasync());
  }
  fdatasyncSync(): void {
    this.#handle.fdatasyncSync();
  }
  truncate(length: number): Promise<void> {
    return rejecting(() => this.#handle.truncate(length));
  }
  truncateSync(length: number): void {
    this.#handle.truncateSync(length);
  }
  /** Reserves disk space for [offset, offset + length) (fallocate, or posix_fallocate). */
  allocate(offset: number, length: number): Promise<void> {
    return rejecting(() => this.#handle.allocate(offset, length));
  }
  allocateSync(offset: number, length: number): void {
    this.#handle.allocateSync(offset, length);
  }
  size(): Promise<number> {
    return rejecting(() => this.#handle.size());
  }
  sizeSync(): number {
    return this.#handle.sizeSync();
  }
  /**
   * Closes after every operation queued before it; later calls fail with WALNUT_CLOSED. The
   * descriptor stays open, parked, while a SQLite library in this process holds locks on the file.
   */
  close(): Promise<void> {
    return rejecting(() => this.#handle.close()).finally(sweepWhileParked);
  }
  closeSync(): void {
    try {
      this.#handle.closeSync();
    } finally {
      sweepWhileParked();
    }
  }

  /** Descriptors parked for a SQLite library's locks in this process (native/fd_registry.h). */
  static pendingCloses(): number {
    return NativeFile.pendingCloses();
  }

  /**
   * The file's first `maxBytes` bytes (all of it when shorter), read through a walnut descriptor
   * (so closing it respects SQLite's locks). Always bounded: a -shm is anyone's to grow (a sparse
   * 10 GiB one failed the read, and a large one was read whole where only its header or its first
   * segments mattered).
   */
  static readPrefixSync(path: string, maxBytes: number): Buffer {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw walnutError('WALNUT_INVALID_ARGUMENT', `maxBytes must be a non-negative integer, not ${describeValue(maxBytes)}`, { reason: 'maxBytes' });
    }
    const file = WalnutFile.openSync(path, { readOnly: true });
    try {
      const bytes = Buffer.alloc(Math.min(file.sizeSync(), maxBytes));
      return bytes.subarray(0, file.readSync(bytes, 0, bytes.length, 0));
    } finally {
      file.closeSync();
    }
  }

  /** One non-blocking attempt: true when acquired. */
  tryLock(start: number, length: number, mode: LockMode): boolean {
    return this.#handle.tryLock(start, length, mode);
  }

  /**
   * Waits for the lock for up to `micros` (at most 1,000,000) from now, blocked in the kernel
   * (F_OFD_SETLKW) on a thread of the addon's lock lane (a pool for these waits only: nothing
   * else queues behind one, and the waits of several files run side by side): true once
   * acquired, false when the time ran out or cancelLockWithin() came first. For a lock that
   * another process frees only for microseconds at a time (a writer that takes it back at
   * once), which timer-paced tries mostly miss: the kernel wakes the waiter as it is let go.
   * The caller keeps its own accounting: nothing else of this descriptor may take the same range
   * while it is in flight (OFD locks belong to the descriptor, so that would succeed too), and it
   * must not wait for a lock whose holder may be waiting for one of its own (the kernel detects
   * no deadlock between OFD waiters: native/lock_wait.h). close()/closeSync() interrupt a wait
   * (one not started yet never runs): it rejects WALNUT_CLOSED, and the close does not wait for
   * the rest of it.
   */
  lockWithin(start: number, length: number, mode: LockMode, micros: number): Promise<boolean> {
    return rejecting(() => this.#handle.lockWithin(start, length, mode, micros));
  }

  /** Every lockWithin() of this file asked for so far resolves false at once, unless it had the lock first. */
  cancelLockWithin(): void {
    this.#handle.cancelLockWithin();
  }

  /** Acquires the lock, retrying up to `timeout` ms, else rejects with WALNUT_BUSY. */
  async lock(start: number, length: number, mode: LockMode, timeout = 0): Promise<void> {
    checkTimeout(timeout);
    const deadline = performance.now() + timeout;
    for (let attempt = 0; ; attempt++) {
      if (this.#handle.tryLock(start, length, mode)) return;
      const left = deadline - performance.now();
      if (left <= 0) throw this.#busy(start, length, mode);
      await new Promise((resolve) => setTimeout(resolve, Math.min(busyDelay(attempt), left)));
    }
  }

  /** As lock(), blocking the calling thread between attempts (start-up and tools only). */
  lockSync(start: number, length: number, mode: LockMode, timeout = 0): void {
    checkTimeout(timeout);
    const deadline = performance.now() + timeout;
    for (let attempt = 0; ; attempt++) {
      if (this.#handle.tryLock(start, length, mode)) return;
      const left = deadline - performance.now();
      if (left <= 0) throw this.#busy(start, length, mode);
      sleepSync(Math.min(busyDelay(attempt), left));
    }
  }

  unlock(start: number, length: number): void {
    this.#handle.unlock(start, length);
  }

  /** Who would block a `mode` lock on the range right now; null when it is free. */
  lockHolder(start: number, length: number, mode: LockMode): NativeLockHolder | null {
    return this.#handle.queryLock(start, length, mode);
  }

  /**
   * Every held part of the range that would block a `mode` lock, in byte order (each clipped to
   * the range; one held byte once, however many descriptors hold it). F_OFD_GETLK answers with
   * the first conflicting lock in the kernel's list, which is grouped by owner, not sorted by
   * byte: an answer says nothing of the bytes before it. So each answer splits what is left of
   * its part into the bytes before and after it, each asked again: at most 2n+1 queries for n
   * held parts, not one per byte (inspect's 4,096 name bytes cost a few).
   */
  lockHolders(start: number, length: number, mode: LockMode): NativeLockHolder[] {
    const held: NativeLockHolder[] = [];
    const parts: [number, number][] = [[start, start + length]]; // [from, to): still to ask about
    for (let part = parts.pop(); part !== undefined; part = parts.pop()) {
      const [from, to] = part;
      const holder = this.lockHolder(from, to - from, mode);
      if (holder === null) continue;
      const first = Math.max(holder.start, from);
      const end = holder.length === 0 ? to : Math.min(holder.start + holder.length, to); // (length 0: to the end of the file)
      if (first >= end) continue; // (the kernel answers with a lock inside the range asked about)
      held.push({ ...holder, start: first, length: end - first });
      if (first > from) parts.push([from, first]);
      if (end < to) parts.push([end, to]);
    }
    return held.sort((a, b) => a.start - b.start);
  }

  #busy(start: number, length: number, mode: LockMode) {
    const holder = this.#handle.queryLock(start, length, mode);
    const who = holder === null ? '' : holder.pid > 0 ? ` (held ${holder.type} by pid ${holder.pid})` : ` (held ${holder.type})`;
    return walnutError('WALNUT_BUSY', `${mode} lock on bytes ${start}..${start + length - 1} is held elsewhere${who}`, {
      path: this.path,
    });
  }
}
