/**
 * export/stream.ts — the export entry points: an export handle over a connection,
 * createExportStream(path), a Readable of the ARKHEXP1 stream of a database on disk, and
 * openExportOutput(db, file), the file such a stream may be written to.
 *
 * An export never lands on the database it reads: not on the database file, its -wal, -shm,
 * FEC sidecar (`<db>-wal-fec`) or rollback journal, whatever name, symbolic link (dangling
 * too) or hard link reaches them.
 * Files are compared by identity (device and inode, after every link is followed), and by
 * real path for those that do not exist yet. An existing output file is replaced only with
 * `force`, and its identity is checked on the opened descriptor before it is truncated.
 *
 * An export holds a read snapshot of the connection while it runs, and it runs as fast as its
 * sink takes records. When the store closes the connection, the export is cut: its sink calls
 * are abandoned, the export ends with WALNUT_CLOSED and lets its snapshot go, so a sink nobody
 * empties never holds a connection open. The sink then holds a prefix of the stream that ends
 * between records (a restore keeps its complete commits).
 */
import { describeValue, readInput, refuseExtraArguments } from '../arguments';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { finished, PassThrough, Transform, Writable, type Readable } from 'node:stream';
import { getSystemErrorName } from 'node:util';

import { closeAsLastConnection } from '../checkpoint/execute';
import { notWritableForReadOnly } from '../commit/read-only';
import { diskFull, isWalnutError, walnutError, WalnutError } from '../errors';
import { LONGEST_TIMER_MS } from '../longest-timer';
import { givenOr, optionsWithout, unknownOptionName } from '../option-names';
import { sidecarPathOf } from '../fec/writer';
import { WalIndex, type WalIndexOptions } from '../wal-index/wal-index';
import { WalnutFile } from '../io/file';
import { checkDbPath, refuseCompanionName, requireRegularFiles, resolvedPath } from '../io/real-path';
import { settleRestores } from '../io/restore-asides';
import { DB_HEADER_SIZE, isWalMode } from '../format/db-header';
import { dbHeaderThroughWal, type HeaderThroughWal } from '../wal/page1-through-wal';
import { checkExportOptions, Exporter, type ExportOptions, type ExportStats } from './exporter';
import { appendFramedRecords, BufferedWalSink, pageDeltasOf, type DirectWrite, type RecordBatchSink, type SinkPageDeltas, type WalRecordSink } from './framing';

export interface ExportHandle {
  /** Resolves when the export ends (at once after the base and the WAL without follow). */
  readonly done: Promise<ExportStats>;
  /**
   * Ends follow mode after a last pass over what is committed now; resolves with the final
   * statistics once the sink took it. `timeoutMs` bounds that wait: past it the export is cut
   * (its sink calls abandoned, its snapshot released) and stop() rejects with WALNUT_IO, reason
   * StopTimeout. Without it, a sink that never settles keeps stop() waiting (close() cuts it).
   */
  stop(options?: ExportStopOptions): Promise<ExportStats>;
  /** Look for new commits now. */
  poke(): void;
  /**
   * Follow mode: bytes of committed WAL frames whose records its sink has not taken yet (from the
   * export's snapshot on: during its first pass, the commits after its base image's state; 0
   * once it has ended): a slow sink's backlog, which waits in the WAL (and keeps it from
   * restarting past 64 MiB of it).
   */
  behindBytes(): number;
  /**
   * behindBytes() less the frames of the records handed to the sink in a call not yet settled:
   * for a sink that counts what it was handed and has not taken itself (replication's worker),
   * so that the sum counts each commit once.
   */
  unreadBytes(): number;
}

export interface ExportStopOptions {
  /** Milliseconds to wait for the sink (1..2^31-1); default: as long as it takes. */
  timeoutMs?: number;
}

/**
 * stop()'s options, checked before anything stops: its timeout in ms, or undefined for none.
 * Only an object is options: stop() ends something, and is handed over as a callback like
 * close() (process.once('SIGTERM', handle.stop.bind(handle)) passes the signal's name, a
 * socket's 'close' a boolean), so such a value is no options (a signal's name was refused: the
 * export went on, and the signal handler's promise rejected unhandled). A number is refused:
 * stop(5000) reads as a timeout, and ignoring it could wait forever.
 */
function stopTimeoutOf(options: ExportStopOptions | undefined): number | undefined {
  const bad = (): never => {
    throw walnutError('WALNUT_INVALID_ARGUMENT', 'stop() options must be { timeoutMs?: whole number of ms in 1..2^31-1 }', { reason: 'options' });
  };
  if (typeof options === 'number' || typeof options === 'bigint') bad();
  if (typeof options !== 'object' || options === null) return undefined;
  if (unknownOptionName(options, ['timeoutMs']) !== undefined) bad();
  const t: unknown = options.timeoutMs;
  if (t !== undefined && !(typeof t === 'number' && Number.isInteger(t) && t >= 1 && t <= LONGEST_TIMER_MS)) bad();
  return t as number | undefined;
}

/** createExportStream's Readable. */
export interface ExportReadable extends Readable {
  /**
   * Ends follow mode after a last pass over what is committed now (every commit made before the
   * call is in the stream), then the stream ends; resolves once it has ended ('end': its reader
   * read it all). `timeoutMs` bounds the wait for the reader to take the last records: past it the
   * stream is destroyed with WALNUT_IO, reason StopTimeout, and stop() rejects with that. Rejects
   * too when the stream fails or is destroyed meanwhile. Without follow the export ends on its
   * own; stop() then only waits for that end. Called before the export began (its database still
   * opening), the export makes its base image and the WAL's commits as of then, and ends.
   */
  stop(options?: ExportStopOptions): Promise<void>;
}

/** The handle the connection keeps: it can also cut the export (see the header). */
export interface ExportRun extends ExportHandle {
  /** Cuts the export with `reason` (unless it has ended) and resolves once it has ended. */
  cut(reason: WalnutError): Promise<void>;
  /** Look for new commits at once, whenever the last pass began (Exporter.catchUp). */
  catchUp(): void;
}

/**
 * The exporter's sink, which cut() detaches: every pending and later call rejects with the
 * reason. The exporter awaits one call at a time; a cut rejects the one in flight (no call is
 * raced against a promise that lives as long as the export: that would keep a reaction per record).
 */
class CuttableSink implements RecordBatchSink {
  readonly #sink: WalRecordSink;
  readonly #inFlight = new Set<(e: WalnutError) => void>();
  #reason: WalnutError | null = null;

  readonly pageDeltas: SinkPageDeltas | null;

  constructor(sink: WalRecordSink) {
    this.#sink = sink;
    this.pageDeltas = pageDeltasOf(sink);
  }

  appendRecord(payload: Uint8Array): Promise<void> {
    return this.#unlessCut(() => this.#sink.appendRecord(payload));
  }

  /** The caller reuses the payloads' memory afterwards: a caller's sink gets copies it may keep (BufferedWalSink copies anyway), or the records as they are when it takes several at once (and copies itself). */
  appendRecords(payloads: readonly Uint8Array[]): Promise<void> {
    const inner = this.#sink;
    if (inner.appendRecords !== undefined) return this.#unlessCut(() => inner.appendRecords!(payloads));
    const copies = !(this.#sink instanceof BufferedWalSink);
    return this.#unlessCut(async () => {
      for (const p of payloads) {
        if (this.#reason !== null) return; // cut: the rest is abandoned
        await this.#sink.appendRecord(copies ? new Uint8Array(p) : p); // a copy (Buffer#slice would be a view)
      }
    });
  }

  flush(): Promise<void> {
    return this.#unlessCut(() => this.#sink.flush());
  }

  appendFramed(framed: Uint8Array, records: number, owned = false): Promise<void> {
    return this.#unlessCut(() => appendFramedRecords(this.#sink, framed, records, owned));
  }

  /** A BufferedWalSink writing a file lends it (appendDirect). */
  get direct(): boolean {
    return this.#sink instanceof BufferedWalSink && this.#sink.writesFile;
  }

  appendDirect(write: DirectWrite): Promise<void> {
    const sink = this.#sink;
    if (!(sink instanceof BufferedWalSink)) return Promise.reject(walnutError('WALNUT_INVALID_ARGUMENT', 'appendDirect needs a file sink', { reason: 'target' }));
    return this.#unlessCut(() => sink.appendDirect(write));
  }

  cut(reason: WalnutError): void {
    this.#reason ??= reason;
    for (const abandon of this.#inFlight) abandon(this.#reason);
  }

  async #unlessCut(call: () => Promise<void> | void): Promise<void> {
    if (this.#reason !== null) throw this.#reason;
    let abandon: (e: WalnutError) => void = () => undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        abandon = reject;
        this.#inFlight.add(abandon);
        Promise.resolve().then(call).then(resolve, reject);
      });
    } catch (e) {
      if (e instanceof WalnutError) throw e;
      // a caller's record sink failed on its own terms: the export ends with a WalnutError
      throw walnutError(diskFull(e) ? 'WALNUT_FULL' : 'WALNUT_IO', `the export's record sink failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    } finally {
      this.#inFlight.delete(abandon);
    }
  }
}

export function isRecordSink(x: unknown): x is WalRecordSink {
  return typeof x === 'object' && x !== null && typeof (x as WalRecordSink).appendRecord === 'function' && typeof (x as WalRecordSink).flush === 'function';
}

function isWritable(x: unknown): x is Writable {
  return typeof x === 'object' && x !== null && typeof (x as Writable).write === 'function' && typeof (x as Writable).once === 'function';
}

/**
 * Throws WALNUT_INVALID_ARGUMENT (reason 'OutputIsDatabase') when `target` writes to a descriptor
 * that is the database or one of its files: `walnut export app.db >> app.db` hands the export
 * a stdout that is the database itself.
 */
export function refuseExportTarget(dbPath: string, target: unknown): void {
  if (arguments.length > 2) refuseExtraArguments('refuseExportTarget', 'a database path and a target', 2, arguments);
  checkDbPath(dbPath);
  if (typeof target !== 'object' || target === null) throw walnutError('WALNUT_INVALID_ARGUMENT', `the export target must be a Writable, a WalnutFile or a record sink, not ${target === null ? 'null' : typeof target}`, { reason: 'target' });
  const fd = target instanceof WalnutFile ? target.fd : (target as { fd?: unknown }).fd;
  if (typeof fd === 'number' && fd >= 0) refuseDatabaseFile(databaseFiles(dbPath), fs.fstatSync(fd), `descriptor ${fd}`);
}

/**
 * `caughtUp(bytes)`: the export's first pass (base image and the WAL's commits as of its start)
 * is in the target, the stream's first `bytes` bytes (magic included; 0 for a record sink).
 */
export interface StreamHooks {
  caughtUp?: (bytes: number) => void;
}

export function startExport(index: WalIndex, target: WalRecordSink | Writable | WalnutFile, options: ExportOptions = {}, hooks: StreamHooks = {}): ExportRun {
  // the caller's object is read here (a getter, a Proxy's trap, an fd that is no descriptor: fstat's EBADF): its throws are the argument's refusal
  const recordSink = readInput('target', () => {
    const isSink = isRecordSink(target);
    if (!(target instanceof WalnutFile) && !isSink && !isWritable(target)) {
      throw walnutError('WALNUT_INVALID_ARGUMENT', 'the export target must be a Writable, a WalnutFile or a record sink { appendRecord, flush }', { reason: 'target' });
    }
    refuseExportTarget(index.dbPath, target);
    return isSink;
  });
  const checked = checkExportOptions(options); // before the sink takes the target
  const buffered = recordSink ? null : readInput('target', () => new BufferedWalSink(target as Writable | WalnutFile));
  const sink = new CuttableSink(buffered ?? (target as WalRecordSink));
  const caughtUp = hooks.caughtUp;
  const exporter = new Exporter(index, sink, checked, caughtUp === undefined ? {} : { caughtUp: () => caughtUp(buffered?.stats.bytes ?? 0) });
  const done = exporter.run();
  const detach = (): void => buffered?.detach();
  done.then(detach, detach);
  done.catch(() => undefined); // surfaced through done/stop
  return {
    done,
    stop: (options) => {
      let timeoutMs: number | undefined;
      try {
        timeoutMs = readInput('options', () => stopTimeoutOf(options));
      } catch (e) {
        return Promise.reject(e);
      }
      exporter.stop();
      if (timeoutMs !== undefined) {
        const timer = setTimeout(() => sink.cut(walnutError('WALNUT_IO', `the export's sink did not take its last records within ${timeoutMs} ms of stop(): the export was cut`, { reason: 'StopTimeout' })), timeoutMs);
        const clear = () => clearTimeout(timer);
        done.then(clear, clear);
      }
      return done;
    },
    poke: () => exporter.poke(),
    behindBytes: () => exporter.behindBytes(),
    unreadBytes: () => exporter.unreadBytes(),
    catchUp: () => exporter.catchUp(),
    cut: (reason) => {
      exporter.stop();
      sink.cut(reason);
      return done.then(() => undefined, () => undefined);
    },
  };
}

/**
 * A Readable of the database's export stream. Without follow it ends after the base image
 * and the WAL as of now, once its connection has closed (as SQLite's last connection, when it
 * is one: checkpointed, -wal and -shm removed); with follow it runs until destroyed. Destroying it cuts the export
 * (a sink nobody reads any more must not keep it waiting) and closes its connection, which
 * drops its read mark, before the stream emits 'close'.
 * It emits 'caughtUp' (bytes) once, when its first `bytes` bytes hold the base image and every
 * commit the WAL had when the export began: from there on a prefix of the stream restores to at
 * least the database's state at the start (`walnut export --follow --force` puts its file in
 * place at that point). Its stop() ends a follow the way ExportHandle.stop() does: a last pass
 * over what is committed now, then the stream ends ('end'), where destroy() cuts it where it is.
 */
export function createExportStream(dbPath: string, options: ExportOptions & Pick<WalIndexOptions, 'busyTimeout'> & { readOnly?: boolean } = {}): ExportReadable {
  if (arguments.length > 2) refuseExtraArguments('createExportStream', 'a path and options', 2, arguments);
  // refused here, thrown, before a stream exists: a path that is no string (123) came as the
  // stream's 'error' WALNUT_CANTOPEN, a Symbol as a raw TypeError, options 123 were dropped and
  // misspelt ones reported only once the database had been opened
  const { busyTimeout, readOnly, exportOptions } = readInput('options', () => {
    checkDbPath(dbPath);
    const o = givenOr(options, {});
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw walnutError('WALNUT_INVALID_ARGUMENT', `createExportStream options must be an object: { follow, pollMs, busyTimeout, readOnly }, not ${describeValue(o)}`, { reason: 'options' });
    const t = (o as Record<string, unknown>)['busyTimeout'];
    if (t !== undefined && (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0)) throw walnutError('WALNUT_INVALID_ARGUMENT', 'createExportStream option busyTimeout must be a whole number of milliseconds >= 0', { reason: 'busyTimeout' });
    const r = givenOr((o as Record<string, unknown>)['readOnly'], false);
    if (typeof r !== 'boolean') throw walnutError('WALNUT_INVALID_ARGUMENT', `createExportStream option readOnly must be a boolean, not ${describeValue(r)}`, { reason: 'readOnly' });
    return { busyTimeout: (t as number | undefined) ?? 5000, readOnly: r, exportOptions: checkExportOptions(optionsWithout(o, ['busyTimeout', 'readOnly'])) };
  });
  refuseUnexportable(dbPath);
  let run: ExportRun | null = null;
  let ended: Promise<void> = Promise.resolve();
  /** stop() came before the export began (the connection still opening). */
  let stopAsked = false;
  const out = new PassThrough({
    destroy(err, callback) {
      run?.cut(walnutError('WALNUT_CLOSED', 'the export stream was destroyed', { path: dbPath }));
      void ended.then(() => callback(err));
    },
  });
  const exportReadable = out as PassThrough & ExportReadable;
  const failure = (): unknown => (isWalnutError(out.errored) ? out.errored : walnutError('WALNUT_CLOSED', 'the export stream was destroyed before it ended', { path: dbPath }));
  // one wait for the stream's end shared by every stop(): each call's own finished() added four
  // listeners to the stream, and the eleventh stop() before the end printed MaxListenersExceededWarning
  let ending: Promise<void> | null = null;
  const endOf = (): Promise<void> =>
    (ending ??= new Promise<void>((resolve, reject) => {
      finished(out, (e) => (e === undefined || e === null ? resolve() : reject(failure())));
    }));
  exportReadable.stop = (options?: ExportStopOptions): Promise<void> => {
    let timeoutMs: number | undefined;
    try {
      timeoutMs = readInput('options', () => stopTimeoutOf(options));
    } catch (e) {
      return Promise.reject(e);
    }
    // the run's own stop() waits for its sink, this stream, only: the timeout below also covers
    // the reader (its records taken by the stream were still unread by a stuck one)
    if (run !== null) void run.stop().catch(() => undefined); // its failure destroys the stream: below
    else stopAsked = true;
    if (out.readableEnded) return Promise.resolve();
    if (out.destroyed) return Promise.reject(failure());
    const end = endOf();
    if (timeoutMs !== undefined) {
      const timer = setTimeout(() => out.destroy(walnutError('WALNUT_IO', `the export stream's reader did not take its last records within ${timeoutMs} ms of stop(): the stream was cut`, { path: dbPath, reason: 'StopTimeout' })), timeoutMs);
      const clear = (): void => clearTimeout(timer);
      end.then(clear, clear);
    }
    return end.then(() => undefined); // (each call's own promise, each to be handled by its caller)
  };
  ended = (async () => {
    // readOnly: the connection writes nothing to the database file or its -wal, as a read-only
    // store's (commit/read-only.ts): it converts no rollback-journal database, its follow never
    // restarts the WAL (export/follow.ts), and it closes without the last connection's
    // checkpoint and removal of the -wal
    const index = readOnly ? await WalIndex.open(dbPath, { busyTimeout, convert: false }).catch((e: unknown) => Promise.reject(notWritableForReadOnly(e, dbPath, 'a read-only export'))) : await WalIndex.open(dbPath, { busyTimeout });
    index.readOnly = readOnly;
    try {
      if (out.destroyed) return;
      run = startExport(index, out, exportOptions, { caughtUp: (bytes) => out.emit('caughtUp', bytes) });
      if (stopAsked) void run.stop().catch(() => undefined);
      await run.done;
    } finally {
      if (readOnly) await index.close();
      else await closeAsLastConnection(index, true); // as SQLite's last connection: no -wal/-shm left behind
    }
    if (!out.destroyed) out.end(); // once the connection has closed: a reader that saw the end sees the files as it left them
  })().catch((e) => {
    if (!out.destroyed) out.destroy(e);
  });
  return exportReadable;
}

/**
 * The common mistakes createExportStream refuses where its caller can catch them, thrown before a
 * stream exists, with the codes the database's open gives them (WalIndex.open, as the stream's
 * 'error' they came; with no 'error' listener that was an uncaught exception, the process
 * gone): a path that is not there or cannot be looked up (WALNUT_CANTOPEN with the errno, as
 * open() reports a database it cannot create), not a regular file (WALNUT_CANTOPEN
 * NotRegularFile), no SQLite database (empty, or page 1 neither in the file nor in its WAL:
 * WALNUT_CANTOPEN), a database in rollback-journal mode (WALNUT_CANTOPEN NotWalMode; one with a
 * -journal beside it is left to the open, which looks for a hot journal first).
 * Read as the open reads (a restore that died replacing it settled first; page 1 through the
 * WAL, settled reads) but under no lock: what changes after the call is the open's to find.
 */
function refuseUnexportable(dbPath: string): void {
  let real: string;
  try {
    real = fs.realpathSync(dbPath);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw walnutError('WALNUT_CANTOPEN', `cannot open database ${dbPath}: ${err.message}`, { path: dbPath, errno: err.errno === undefined ? undefined : Math.abs(err.errno), syscall: err.syscall, cause: e });
  }
  settleRestores(real);
  requireRegularFiles(real, [`${real}-wal`, `${real}-shm`]);
  // read through a WalnutFile, never node:fs: closing any descriptor of the file drops every
  // POSIX lock this process's SQLite connections hold on it (native/fd_registry.h)
  const file = WalnutFile.openSync(real, { readOnly: true, nonBlocking: true }); // (WALNUT_CANTOPEN with the open's errno)
  let through: HeaderThroughWal;
  let got = 0;
  try {
    const head = new Uint8Array(DB_HEADER_SIZE);
    through = dbHeaderThroughWal(real, () => head.subarray(0, (got = file.readSync(head, 0, head.length, 0))));
  } catch {
    return; // (a read that failed: the open meets it, and says so as the stream's 'error')
  } finally {
    file.closeSync();
  }
  if (through.otherPageSize !== undefined || through.foreignWalPageSize !== undefined) return; // damage: the open's WALNUT_CORRUPT
  const h = through.header;
  if (h === null || h.pageSize === 0) throw walnutError('WALNUT_CANTOPEN', `cannot export ${dbPath}: ${got === 0 ? 'the database file is empty (no page 1 yet)' : 'not a SQLite database'}`, { path: real });
  if (!isWalMode(h) && !through.fromWal && !fs.existsSync(`${real}-journal`)) {
    throw walnutError('WALNUT_CANTOPEN', `cannot export ${dbPath}: the database is in rollback-journal mode, not WAL mode (open() converts it, as PRAGMA journal_mode=WAL does)`, { path: real, reason: 'NotWalMode' });
  }
}

type DatabaseFile = { path: string; what: string };

/** The files an export must never be written to: the database (real path) and its companions. */
function databaseFiles(dbPath: string): DatabaseFile[] {
  let real: string;
  try {
    real = fs.realpathSync(dbPath);
  } catch (e) {
    throw walnutError('WALNUT_CANTOPEN', `cannot open database ${dbPath}: ${(e as Error).message}`, { path: dbPath, cause: e });
  }
  return [
    { path: real, what: 'the database' },
    { path: `${real}-wal`, what: "the database's -wal" },
    { path: `${real}-shm`, what: "the database's -shm" },
    { path: sidecarPathOf(`${real}-wal`), what: "the database's FEC sidecar" },
    { path: `${real}-journal`, what: "the database's rollback journal" },
  ];
}

function statOrNull(file: string): fs.Stats | null {
  try {
    return fs.statSync(file);
  } catch {
    return null; // not there (or not reachable): nothing of it to overwrite
  }
}

/** Throws WALNUT_INVALID_ARGUMENT (reason 'OutputIsDatabase') when `st` is one of `files`. */
function refuseDatabaseFile(files: DatabaseFile[], st: fs.Stats, shown: string): void {
  for (const f of files) {
    const other = statOrNull(f.path);
    if (other !== null && other.dev === st.dev && other.ino === st.ino) refuse(f, shown);
  }
}

function refuse(f: DatabaseFile, shown: string): never {
  throw walnutError('WALNUT_INVALID_ARGUMENT', `refusing to write the export to ${shown}: it is ${f.what} (${f.path})`, { path: f.path, reason: 'OutputIsDatabase' });
}

export interface ExportOutputOptions {
  /** Replace an existing file (default false: an existing file is refused). */
  force?: boolean;
}

/** openExportOutput's `force` (default false); options other than `{ force: boolean }` are refused. */
function checkOutputOptions(options: unknown): boolean {
  if (options === undefined) return false;
  if (options === null || typeof options !== 'object') {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `openExportOutput options must be { force?: boolean }, not ${options === null ? 'null' : typeof options}`, { reason: 'options' });
  }
  const key = unknownOptionName(options, ['force']);
  if (key !== undefined) throw walnutError('WALNUT_INVALID_ARGUMENT', `openExportOutput option ${key} does not exist (only force)`, { reason: 'options' });
  const force = (options as ExportOutputOptions).force;
  if (force !== undefined && typeof force !== 'boolean') throw walnutError('WALNUT_INVALID_ARGUMENT', `force must be true or false, not ${typeof force}`, { reason: 'force' });
  return force === true;
}

/** `dbPath` and `file` as paths (their types, NUL bytes, an empty `file`), before anything is looked up. */
function checkOutputPaths(dbPath: string, file: string): void {
  checkDbPath(dbPath);
  if (typeof file !== 'string' || file === '' || file.includes('\0')) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `the export's file must be a non-empty path without NUL bytes, not ${typeof file === 'string' ? JSON.stringify(file) : typeof file}`, { reason: 'file' });
  }
}

/**
 * openExportOutput's checks of `file` as the output of `dbPath`'s export (its doc comment): the
 * database's files (any name), another database's companion name, a directory. Returns the
 * database's files and what `file` is now (null: not there). The paths' own checks first
 * (checkOutputPaths).
 */
function checkExportTarget(dbPath: string, file: string): { files: DatabaseFile[]; existing: fs.Stats | null } {
  const files = databaseFiles(dbPath);
  const real = resolvedPath(file); // a dangling link too: the name the open with force would create
  const named = files.find((f) => f.path === real);
  if (named !== undefined) refuse(named, file);
  refuseCompanionName(real, `write the export to ${file}`); // another database's -wal, say
  const existing = statOrNull(file);
  if (existing !== null) refuseDatabaseFile(files, existing, file);
  if (existing?.isDirectory()) throw walnutError('WALNUT_CANTOPEN', `cannot open ${file} for the export: it is a directory`, { path: file, reason: 'directory' });
  if (existing?.isFile()) refuseLiveExport(file);
  return { files, existing };
}

/**
 * WALNUT_BUSY (reason 'InUse') when `file` is written by a live export: a `--force` export's
 * file keeps its lock on byte 0 (openExportReplacement) after it took FILE's name, for as long
 * as a --follow goes on writing it. Replacing it (or truncating it in place) left that follow
 * writing on into the unlinked file, every commit after it lost to the backup, while the
 * follow ran on without an error. A symbolic link `file` is followed, as --force follows it to
 * the file it replaces: opened without following, the link was never looked through, and
 * `export -o LINK --force` replaced the file a follow wrote (exit 0).
 */
function refuseLiveExport(file: string): void {
  let f: WalnutFile;
  try {
    f = WalnutFile.openSync(file, { readOnly: true, followSymlinks: true, nonBlocking: true });
  } catch {
    return; // not a file we can look at: the open below reports it
  }
  let holder: ReturnType<WalnutFile['lockHolder']>;
  try {
    holder = f.lockHolder(0, 1, 'exclusive');
  } catch {
    holder = null;
  } finally {
    f.closeSync();
  }
  if (holder === null) return;
  const who = holder.pid > 0 ? ` (pid ${holder.pid})` : '';
  throw walnutError('WALNUT_BUSY', `refusing to replace ${file}: another export is writing it${who}; stop that export first`, { path: file, reason: 'InUse' });
}

/**
 * Opens `file` to receive the export stream of `dbPath` and returns a Writable over it. Refused
 * (WALNUT_INVALID_ARGUMENT): the database or one of its files (-wal, -shm, -wal-fec, -journal),
 * by any name (reason 'OutputIsDatabase'); a name that is such a file of another database
 * (reason 'TargetIsCompanion'); an existing regular file without `force` (reason
 * 'exists'). A device or FIFO (/dev/null, a named pipe) is written without `force`: nothing is
 * replaced. A directory is WALNUT_CANTOPEN. A new file gets 0644 less the umask. Without `force`
 * a new file is created exclusively (never through a symbolic link); with `force` a link the
 * caller names is followed, like a shell redirection.
 */
export function openExportOutput(dbPath: string, file: string, options: ExportOutputOptions = {}): Writable {
  if (arguments.length > 3) refuseExtraArguments('openExportOutput', 'a database path, a file and options', 3, arguments);
  checkOutputPaths(dbPath, file);
  const force = readInput('options', () => checkOutputOptions(options));
  const { files, existing } = checkExportTarget(dbPath, file);
  if (existing?.isFIFO()) return openFifoOutput(files, file);
  const device = existing !== null && !existing.isFile(); // a character device, FIFO or socket: written, never created or replaced
  const { O_WRONLY, O_CREAT, O_EXCL } = fs.constants; // libuv adds O_CLOEXEC
  let fd: number;
  let lock: WalnutFile | null = null;
  try {
    fd = fs.openSync(file, O_WRONLY | (device ? 0 : O_CREAT) | (force || device ? 0 : O_EXCL), 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw exists(file);
    throw cannotOpenOutput(file, e);
  }
  try {
    const st = fs.fstatSync(fd);
    refuseDatabaseFile(files, st, file); // the file actually opened: a link swapped in meanwhile counts too
    if (device && st.isFile() && !force) throw exists(file); // a regular file swapped in for the device
    if (st.isFile()) lock = lockExportOutput(fd, st, file);
    if (force && st.isFile()) fs.ftruncateSync(fd, 0);
  } catch (e) {
    lock?.closeSync();
    fs.closeSync(fd);
    if (!force && !device) fs.rmSync(file, { force: true }); // created above, exclusively: ours
    throw e;
  }
  const output = fs.createWriteStream(file, { fd });
  if (lock !== null) output.once('close', () => lock!.closeSync()); // held for as long as the stream writes the file
  return output;
}

function cannotOpenOutput(file: string, e: unknown): WalnutError {
  const err = e as NodeJS.ErrnoException;
  return walnutError('WALNUT_CANTOPEN', `cannot open ${file} for the export: ${err.message}`, { path: file, errno: err.errno === undefined ? undefined : -err.errno, cause: e });
}

/** How often an export to a FIFO nobody reads yet tries its open again (openFifoOutput). */
const FIFO_READER_POLL_MS = 50;

/** The longest pause before a write into a full FIFO is tried again (openFifoOutput: from 1 ms, doubling). */
const FIFO_FULL_PAUSE_MAX_MS = 20;

/**
 * The Writable over an existing FIFO `file` (a named pipe), opened once a process reads it,
 * without blocking the event loop meanwhile. An O_WRONLY open of a FIFO sleeps in the kernel
 * until a reader comes; made with openSync on the main thread, `walnut export app.db -o PIPE`
 * with no reader yet sat in that open where its SIGINT, SIGTERM and SIGHUP handlers could never
 * run (only SIGKILL ended it), and an API caller's whole process froze. (An open on libuv's
 * thread pool is no better: process.exit waits for that thread.) So the open is tried with
 * O_NONBLOCK, which fails ENXIO while nobody reads, every FIFO_READER_POLL_MS until it succeeds
 * or the stream is destroyed. The descriptor stays non-blocking: a write on the thread pool
 * into a pipe whose reader stopped reading slept there for good, and neither a signal nor
 * process.exit (which joins libuv's threads) ended the process. A full pipe (EAGAIN) is tried
 * again on a timer instead (Node's stream took EAGAIN five times in a row for a failure).
 */
function openFifoOutput(files: DatabaseFile[], file: string): Writable {
  const { O_WRONLY, O_NONBLOCK } = fs.constants;
  const waitForReader = (_path: unknown, _flags: unknown, _mode: unknown, callback: (err: Error | null, fd?: number) => void): void => {
    const attempt = (): void => {
      if (output.destroyed) {
        // destroyed before a reader came: the stream's pending close wants a descriptor, and an
        // error here would be emitted after a plain destroy() (unhandled: a crash)
        callback(null, fs.openSync('/dev/null', O_WRONLY));
        return;
      }
      let probe: number;
      try {
        probe = fs.openSync(file, O_WRONLY | O_NONBLOCK);
      } catch (e) {
        // ENXIO: no reader yet, as long as the name is still a FIFO (a socket swapped in says ENXIO for ever)
        if ((e as NodeJS.ErrnoException).code === 'ENXIO' && statOrNull(file)?.isFIFO() === true) setTimeout(attempt, FIFO_READER_POLL_MS);
        else callback(cannotOpenOutput(file, e));
        return;
      }
      try {
        const st = fs.fstatSync(probe);
        refuseDatabaseFile(files, st, file); // the file actually opened: a link swapped in meanwhile counts too
        if (!st.isFIFO()) throw walnutError('WALNUT_CANTOPEN', `cannot open ${file} for the export: it was replaced while the export waited for its reader`, { path: file, reason: 'Replaced' }); // (nothing of the new file touched)
      } catch (e) {
        fs.closeSync(probe);
        callback(e instanceof WalnutError ? e : cannotOpenOutput(file, e));
        return;
      }
      callback(null, probe);
    };
    attempt();
  };
  /** `write` (fs.write or fs.writev) again after a growing pause while the pipe is full, until the stream is destroyed. */
  const untilRoom = (write: (done: (err: NodeJS.ErrnoException | null, ...rest: unknown[]) => void) => void, callback: (err: NodeJS.ErrnoException | null, ...rest: unknown[]) => void): void => {
    const attempt = (pauseMs: number): void =>
      write((err, ...rest) => {
        if (err?.code === 'EAGAIN' && !output.destroyed) setTimeout(() => attempt(Math.min(2 * pauseMs, FIFO_FULL_PAUSE_MAX_MS)), pauseMs);
        else callback(err, ...rest);
      });
    attempt(1);
  };
  const write = (fd: number, buffer: Buffer, offset: number, length: number, position: number | null, callback: (err: NodeJS.ErrnoException | null, ...rest: unknown[]) => void): void =>
    untilRoom((done) => fs.write(fd, buffer, offset, length, position, done), callback);
  const writev = (fd: number, buffers: NodeJS.ArrayBufferView[], position: number | null, callback: (err: NodeJS.ErrnoException | null, ...rest: unknown[]) => void): void =>
    untilRoom((done) => fs.writev(fd, buffers, position, done), callback);
  const output = fs.createWriteStream(file, { fs: { open: waitForReader, write, writev, close: fs.close } } as Parameters<typeof fs.createWriteStream>[1]);
  return output;
}

/**
 * The lock a live export holds on byte 0 of the regular file it writes (the one a --force
 * replacement's new file holds, openExportReplacement), taken on a second descriptor of the file
 * `fd` has open (OFD locks are the descriptor's; Node's fd takes none): without it `walnut
 * export --follow -o FILE` into a FILE it created was invisible, and a later `export --force` or
 * `restore --force` over FILE replaced it while the follow went on writing into the unlinked
 * file, every commit after that lost to the backup. WALNUT_BUSY (reason InUse) when another
 * export holds it (one that began between refuseLiveExport and here). Null where no second
 * descriptor can be opened for writing (a file the user may write but not read): unlocked, as before.
 */
function lockExportOutput(fd: number, st: fs.Stats, file: string): WalnutFile | null {
  let lock: WalnutFile;
  try {
    lock = WalnutFile.openSync(`/proc/self/fd/${fd}`, { followSymlinks: true });
  } catch {
    return null;
  }
  const own = fs.fstatSync(lock.fd);
  if (own.dev !== st.dev || own.ino !== st.ino) {
    lock.closeSync();
    return null;
  }
  if (!lock.tryLock(0, 1, 'exclusive')) {
    const holder = lock.lockHolder(0, 1, 'exclusive');
    lock.closeSync();
    throw walnutError('WALNUT_BUSY', `refusing to write ${file}: another export is writing it${holder !== null && holder.pid > 0 ? ` (pid ${holder.pid})` : ''}; stop that export first`, { path: file, reason: 'InUse' });
  }
  return lock;
}

/**
 * A pass-through for a follow export's stream on its way to the regular file `output` writes
 * (its descriptor `fd`, read at each chunk: a replacement's moves to FILE) that fails it with
 * WALNUT_IO (reason OutputRemoved) before a chunk once that file has no name left (st_nlink 0):
 * the user removed FILE (`rm app.ark`, perhaps a new file made at its name). The follow went on
 * writing into the unlinked file, every later commit lost to the backup, and ended with exit 0.
 * (A file renamed keeps its name count, and the follow goes on in it.)
 */
export function failWhenOutputRemoved(output: { readonly fd: number | null }, file: string): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const fd = output.fd;
      let st: fs.Stats | null = null;
      try {
        if (typeof fd === 'number') st = fs.fstatSync(fd);
      } catch {
        st = null; // (a descriptor closed meanwhile: the write reports it)
      }
      if (st !== null && st.isFile() && st.nlink === 0) {
        callback(walnutError('WALNUT_IO', `${file} was removed while the export followed the database: the commits written to it since went with it; start the export again (to a new file, or with --force)`, { path: file, reason: 'OutputRemoved' }));
        return;
      }
      callback(null, chunk);
    },
  });
}

/**
 * An export that replaces an existing regular `file` (`walnut export -o FILE --force`): the
 * stream goes to a new file beside FILE's real path (same directory, so the rename is atomic;
 * FILE's permission bits), which is synced and renamed over FILE, then the directory synced:
 * one-shot, once the stream is whole (`replace()`); with --follow, which has no end, as soon as
 * the stream holds the database's state as of the export's start (`replaceAt(bytes)`, the
 * stream's 'caughtUp'), the stream then going on in FILE. Until then FILE is the old backup,
 * whole: an export that fails (a full disk, a busy or damaged database) or is interrupted calls
 * `abandon()`, which removes the new file. Truncating FILE at the start, as openExportOutput's
 * `force` does (and --follow --force did), lost the old backup to an export that then failed,
 * and what it left did not restore.
 * The new file holds an exclusive OFD lock on its byte 0 until it is FILE or removed, so one
 * left by an export that was killed (SIGKILL, power loss) is known by a lock anyone can take:
 * each replacement of FILE removes those first (removeAbandonedReplacements).
 * Null when `file` is no existing regular file (nothing to replace: openExportOutput then
 * serves), or FILE cannot be replaced by a rename where it could be written (replaceable: a FILE
 * the user may not write is then refused by openExportOutput, as before), or its directory takes
 * no new name (FILE is then truncated in place, as openExportOutput's force does). A FILE that
 * is a mount point is written in place from the synced new file (and a follow goes on writing
 * FILE itself). The new file gets FILE's owner when root runs it. FILE is checked as
 * openExportOutput checks it.
 */
export interface ExportReplacement {
  /** The new file beside FILE: where the stream is written. */
  output: Writable;
  /** One-shot: once `output` has finished, puts the new file in place of FILE (see above). */
  replace(): Promise<void>;
  /**
   * Follow: puts the new file in place of FILE as soon as its first `bytes` bytes are written,
   * while the stream goes on into it. A failure to do so fails `output` (FILE as it was).
   */
  replaceAt(bytes: number): void;
  /** The new file is FILE now (abandon() no longer touches it). */
  readonly replaced: boolean;
  /** Follow, after its stream ended: syncs what was written after the replacement and closes the file. */
  close(): Promise<void>;
  /** Removes the new file, unless it is FILE already. */
  abandon(): void;
}

/**
 * The Writable of an ExportReplacement: appends to the new file's descriptor, counting what is
 * written, and runs `atBytes` (synchronously, between two writes: nothing is written meanwhile,
 * and no signal handler runs half-way through it) once `written` reaches the armed count.
 */
class ReplacementWriter extends Writable {
  fd: number;
  written = 0;
  #at: { bytes: number; run: () => void } | null = null;
  #writing = false;

  constructor(fd: number) {
    super({ highWaterMark: 1 << 20 });
    this.fd = fd;
  }

  /** Runs `run` once `bytes` bytes are in the file (now, when they are and no write is under way). */
  arm(bytes: number, run: () => void): void {
    this.#at = { bytes, run };
    if (!this.#writing) {
      try {
        this.#reached();
      } catch (e) {
        this.destroy(e as Error);
      }
    }
  }

  #reached(): void {
    if (this.#at === null || this.written < this.#at.bytes) return;
    const { run } = this.#at;
    this.#at = null;
    run();
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    this.#writing = true;
    let buffers = chunks.map((c) => c.chunk);
    const next = (e: Error | null, n: number): void => {
      if (e !== null) {
        this.#writing = false;
        callback(e);
        return;
      }
      this.written += n;
      // a short write (a disk filling up): the rest again, which then fails with ENOSPC
      while (n > 0 && buffers.length > 0) {
        const first = buffers[0]!;
        if (n >= first.length) {
          n -= first.length;
          buffers.shift();
        } else {
          buffers[0] = first.subarray(n);
          n = 0;
        }
      }
      if (buffers.length > 0) {
        fs.writev(this.fd, buffers, this.written, next);
        return;
      }
      this.#writing = false;
      try {
        this.#reached();
      } catch (err) {
        callback(err as Error);
        return;
      }
      callback();
    };
    fs.writev(this.fd, buffers, this.written, next);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this._writev([{ chunk }], callback);
  }
}

export function openExportReplacement(dbPath: string, file: string): ExportReplacement | null {
  checkOutputPaths(dbPath, file);
  const { existing } = checkExportTarget(dbPath, file);
  if (existing === null || !existing.isFile()) return null;
  const real = fs.realpathSync(file); // a link the caller names is followed, as force does: its target is replaced
  if (!replaceable(real, existing)) return null;
  const dir = path.dirname(real);
  removeAbandonedReplacements(real);
  const temporary = path.join(dir, replacementName(real));
  let handle: WalnutFile;
  try {
    // (read-write whatever FILE's mode: a new file's own open is not checked against it, 0200 included)
    handle = WalnutFile.openSync(temporary, { create: true, exclusive: true, mode: existing.mode & 0o777 });
  } catch (e) {
    const err = e as WalnutError;
    const code = err.errno === undefined ? undefined : getSystemErrorName(-Math.abs(err.errno));
    // a directory that takes no new name (permissions, chattr +i) while FILE itself is writable:
    // FILE is truncated and written in place, as before (null: openExportOutput's force)
    if (code === 'EACCES' || code === 'EPERM') return null;
    throw walnutError(code === 'ENOSPC' || code === 'EDQUOT' ? 'WALNUT_FULL' : 'WALNUT_CANTOPEN', `cannot create a new file beside ${file} for the export: ${err.message}`, { path: temporary, errno: err.errno, cause: e });
  }
  try {
    handle.lockSync(0, 1, 'exclusive'); // this export is alive; the lock goes with the descriptor
    fs.fchmodSync(handle.fd, existing.mode & 0o777); // the umask left out of it
    if (process.getuid?.() === 0 && (existing.uid !== 0 || existing.gid !== 0)) fs.fchownSync(handle.fd, existing.uid, existing.gid); // root replacing another's backup: still theirs
  } catch (e) {
    handle.closeSync();
    fs.rmSync(temporary, { force: true });
    throw walnutError('WALNUT_IO', `cannot lock, or set the mode or owner of, a new file beside ${file}: ${(e as Error).message}`, { path: temporary, cause: e });
  }
  const output = new ReplacementWriter(handle.fd);
  /** FILE in place when it is a mount point: the follow goes on writing it (null otherwise). */
  let inPlace: number | null = null;
  let state: 'writing' | 'replaced' | 'gone' = 'writing';
  const closeAll = (): void => {
    for (const close of [() => handle.closeSync(), () => inPlace !== null && fs.closeSync(inPlace)]) {
      try {
        close();
      } catch {
        // (closing a descriptor of a file being removed or already closed: nothing left to report)
      }
    }
    inPlace = null;
  };
  const failure = (e: unknown, what: string): WalnutError => {
    if (isWalnutError(e)) return e;
    const err = e as NodeJS.ErrnoException;
    return walnutError(diskFull(err) ? 'WALNUT_FULL' : 'WALNUT_IO', `${what}: ${err.message}`, { path: file, errno: err.errno === undefined ? undefined : -err.errno, cause: e });
  };
  /**
   * The new file, synced, takes FILE's name, then the directory is synced. Synchronous: between
   * two writes of the stream, and no SIGINT/SIGTERM handler runs half-way through it.
   */
  const putInPlace = (): void => {
    let cut = false; // FILE itself written (a mount point): a failure now leaves it cut
    try {
      fs.fsyncSync(output.fd);
      try {
        fs.renameSync(temporary, real);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EBUSY' && code !== 'EXDEV') throw e;
        // FILE is a mount point (a bind-mounted file): no name replaces it, so it is written in
        // place from the new file, as --force did before; a follow goes on in FILE itself, at
        // the same offset
        cut = true;
        inPlace = copyInPlace(temporary, real);
        output.fd = inPlace;
        fs.rmSync(temporary, { force: true });
      }
      state = 'replaced';
    } catch (e) {
      // (the caller fails the output with this error: ReplacementWriter, or replace()'s caller)
      state = 'gone';
      closeAll();
      try {
        fs.rmSync(temporary, { force: true });
      } catch {
        // (a directory that took no rename takes no removal either: the next --force export of FILE removes it, its lock gone)
      }
      throw failure(e, cut ? `cannot write the new export over ${file} in place (a mount point: ${file} is cut)` : `cannot replace ${file} by the new export beside it (the old ${file} is as it was)`);
    }
    try {
      WalnutFile.syncDirectorySync(dir);
    } catch (e) {
      throw failure(e, `cannot sync the directory of ${file} after replacing it`);
    }
  };
  return {
    output,
    get replaced() {
      return state === 'replaced';
    },
    async replace() {
      if (!output.writableFinished) await new Promise<void>((resolve, reject) => output.once('finish', () => resolve()).once('error', reject));
      try {
        putInPlace();
      } finally {
        closeAll();
      }
    },
    replaceAt(bytes) {
      output.arm(bytes, putInPlace);
    },
    async close() {
      try {
        if (state === 'replaced') await new Promise<void>((resolve, reject) => fs.fsync(output.fd, (e) => (e ? reject(failure(e, `cannot sync ${file}`)) : resolve())));
      } finally {
        closeAll();
      }
    },
    abandon() {
      if (state !== 'writing') return;
      state = 'gone';
      output.destroy();
      closeAll();
      fs.rmSync(temporary, { force: true });
    },
  };
}

/**
 * Removes the new files of replacements of `real` whose export died before renaming or removing
 * them (openExportReplacement's header): one whose lock can be taken has no live owner, provided
 * it is not empty (an export locks its file right after creating it; an empty one may be a live
 * export's between the two, unless it is older than a minute). Best effort: what cannot be
 * opened or removed stays. (`.walnut-export-PID-hex`, the short name of a FILE near NAME_MAX,
 * may have been another FILE's: dead all the same.)
 */
function removeAbandonedReplacements(real: string): void {
  const dir = path.dirname(real);
  const ours = new RegExp(`^(?:\\.${escapeRegExp(path.basename(real))})?\\.walnut-export-\\d+-[0-9a-f]{8}$`);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!ours.test(name)) continue;
    const file = path.join(dir, name);
    let f: WalnutFile;
    try {
      f = WalnutFile.openSync(file); // no O_CREAT; a symbolic link is refused, not followed
    } catch {
      continue;
    }
    try {
      if (!f.tryLock(0, 1, 'exclusive')) continue; // a live export's
      const st = fs.fstatSync(f.fd);
      if (st.isFile() && (st.size > 0 || Date.now() - st.mtimeMs > ABANDONED_EMPTY_MS)) fs.rmSync(file, { force: true });
    } catch {
      // left as it is
    } finally {
      f.closeSync();
    }
  }
}

const ABANDONED_EMPTY_MS = 60_000;
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Whether FILE (at `real`, stat `st`) can be replaced by a rename where writing it in place
 * was what --force did: a FILE the user may not write is not (open it: refused, EACCES, as
 * before), nor another user's FILE in a sticky directory neither owns (/tmp: the rename is EPERM
 * there, the write in place is not). False: openExportOutput's force serves, as before.
 */
function replaceable(real: string, st: fs.Stats): boolean {
  try {
    fs.accessSync(real, fs.constants.W_OK);
  } catch {
    return false;
  }
  const uid = process.getuid?.();
  if (uid === undefined || uid === 0) return true;
  const parent = statOrNull(path.dirname(real));
  return parent === null || (parent.mode & 0o1000) === 0 /* S_ISVTX, the sticky bit */ || parent.uid === uid || st.uid === uid;
}

/** `from`'s bytes written over `to` in place (truncated first), then synced; returns `to`'s descriptor, open for writing. */
function copyInPlace(from: string, to: string): number {
  const fd = fs.openSync(to, fs.constants.O_WRONLY | fs.constants.O_TRUNC);
  try {
    fs.copyFileSync(from, to);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  return fd;
}

/** `.NAME.walnut-export-PID-hex` beside FILE, or `.walnut-export-PID-hex` when NAME leaves no room for it (NAME_MAX, 255 bytes). */
function replacementName(real: string): string {
  const tail = `walnut-export-${process.pid}-${randomBytes(4).toString('hex')}`;
  const name = `.${path.basename(real)}.${tail}`;
  return Buffer.byteLength(name) <= 255 ? name : `.${tail}`;
}

function exists(file: string): WalnutError {
  return walnutError('WALNUT_INVALID_ARGUMENT', `${file} exists; pass force (--force) to replace it`, { path: file, reason: 'exists' });
}
