/**
 * cli/index.ts — the `walnut` command (DESIGN.md section 6b). Works on any SQLite database in
 * WAL mode, whoever wrote it, through the public API only. Every command takes --json (one
 * JSON object on stdout, nothing else there). Exit status: 0 done and healthy, 1 a check found
 * problems, 2 a usage or runtime error (one line on stderr naming the WalnutError code; with
 * --json also, on stdout, the object `{"error":{"code","message","reason"?,"path"?}}`, so a
 * script reading stdout as JSON gets JSON whatever happened), 3 a `restore --nats` that stopped
 * at a gap in the stream's log (restoreCommand).
 *
 * A closed stdout (`walnut inspect app.db | head -1`) is not an error of the command: what is
 * left to print is dropped, the command finishes its work (a checkpoint or a restore is never
 * abandoned half-way because nobody reads the report) and exits with the status it would have
 * had. `export` to stdout is the exception, its output being the work: it stops and exits 2
 * (WALNUT_IO, reason EPIPE), so a backup pipeline whose reader died never looks successful.
 *
 * Each command loads the parts of the library it uses when it runs (`await import(...)` in its
 * action), not when the command line is read: loading the whole library, its addon and
 * cli-progress took about as long again as bare node's start-up, paid by `walnut --help` and by
 * every usage error, and `walnut inspect` paid for export, replication and restore. The functions
 * are the public API's (what ../index exports), taken from the modules that define them; loaded
 * up front is only what parsing and error reporting need (commander, ../errors, small
 * constants). ./progress, likewise, loads cli-progress only to draw a bar.
 */
import * as fs from 'node:fs';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Command, CommanderError, Help } from 'commander';

import { CHECKPOINT_MODES, type CheckpointMode } from '../checkpoint/plan';
import type { Store } from '../commit/store';
import { diskFull, isWalnutError, WalnutError, withoutCode } from '../errors';
import type { ExportReadable, ExportReplacement } from '../export/stream';
import { MAX_COMMIT_SEQUENCE } from '../export/records';
import type { InspectReport } from '../integrity/inspect';
import { LONGEST_TIMER_MS } from '../longest-timer';
import { progress } from './progress';
import { onStopSignal } from './signals';

type Out = Record<string, unknown>;

/**
 * What this run's stdout is in JSON terms: --json was asked for (the command's parsed option; for
 * a usage error the parser refused, its presence on the command line), by a command that prints
 * JSON lines (replicate, replica) or one object, and how many objects it printed.
 */
const jsonOutput = { wanted: false, lines: false, printed: 0 };

function print(obj: Out, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(obj) + '\n');
    jsonOutput.printed++;
    return;
  }
  const flat = Object.entries(obj).filter(([, v]) => typeof v !== 'object' || v === null || Array.isArray(v));
  const width = Math.max(...flat.map(([k]) => k.length));
  for (const [k, v] of flat) process.stdout.write(`${k.padEnd(width)}  ${Array.isArray(v) ? JSON.stringify(v) : String(v)}\n`);
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      process.stdout.write(`${k}:\n`);
      // a block's keys padded to its own longest (they took the outer width: inspect's
      // backfillAttempted, one longer, pushed its value a column right of the others)
      const inner = Math.max(...Object.keys(v).map((k2) => k2.length));
      for (const [k2, v2] of Object.entries(v)) process.stdout.write(`  ${k2.padEnd(inner)}  ${typeof v2 === 'object' ? JSON.stringify(v2) : String(v2)}\n`);
    }
  }
}

/**
 * Commands that work on an existing database refuse a path that is not there (open() would
 * create one), or that cannot be looked up, naming why: every failed lookup was "no such file"
 * (existsSync), also for a file in a directory the user may not search, a symbolic-link loop or
 * `app.db/`, where inspect said "permission denied".
 */
async function requireFile(file: string, what = 'database'): Promise<void> {
  // an empty path is a usage error, as inspect and export say (it was "cannot open the database : no such file")
  if (what === 'database') (await import('../io/real-path')).checkDbPath(file);
  else if (file === '') throw new WalnutError(`WALNUT_INVALID_ARGUMENT: the ${what}'s path must be a non-empty string, not ""`, { code: 'WALNUT_INVALID_ARGUMENT', reason: 'source' });
  try {
    fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'ELOOP' ? 'too many symbolic links' : code === 'ENOTDIR' ? 'a part of the path is not a directory' : (e as Error).message;
    throw new WalnutError(`WALNUT_CANTOPEN: cannot open the ${what} ${file}: ${why}`, { code: 'WALNUT_CANTOPEN', path: file });
  }
}

/** The file `name` names (stat, following links) is this process's descriptor `fd`'s; null when it is not. */
function ownFileNamed(name: string | undefined, fd: 0 | 1): fs.Stats | null {
  if (name === undefined || name === '') return null;
  try {
    const named = fs.statSync(name);
    const own = fs.fstatSync(fd);
    return named.dev === own.dev && named.ino === own.ino ? named : null;
  } catch {
    return null; // (the open reports what it finds)
  }
}

/**
 * `name` names this process's own stdin (fd 0) or stdout (fd 1), and that is a socket
 * (/dev/stdout, /dev/fd/1, /proc/self/fd/1 of a process whose stdio are socket pairs: every
 * child Node spawns with stdio 'pipe'): Linux refuses to open a socket by name (ENXIO), so
 * `walnut export db -o /dev/stdout` and `walnut restore /dev/stdin db` run from a Node program
 * failed; they use the descriptor itself, as `-o -` and `-` do.
 */
function namesOwnSocket(name: string | undefined, fd: 0 | 1): boolean {
  return ownFileNamed(name, fd)?.isSocket() === true;
}

/**
 * export's `-o` names the pipe, socket or file that is its own stdout, where --json's summary
 * would go too: after the stream into a pipe (`-o /dev/stdout --json | ...` appended
 * {"bytes":N} to the stream, exit 0), or into the old file --force renames the stream over (the
 * summary lost). A character device (/dev/null both) takes both as the user redirected them.
 */
function namesOwnStdoutStream(name: string | undefined): boolean {
  const own = ownFileNamed(name, 1);
  return own !== null && !own.isCharacterDevice();
}

/** How long `walnut export --follow`, stopped by a signal, waits for its output to take its last pass (walnut replicate's stopTimeoutMs is as long). */
const EXPORT_STOP_TIMEOUT_MS = 5000;

/**
 * An ISO 8601 date or date-time (2026-11-22, 2026-11-22T23:00:00.5Z, 2026-11-22 23:00+01:00). Only this form is a
 * time: Date's fallback parser reads "-1" as the year 2001 and "1.5" as 5 January 2001, so a mistyped sequence
 * would silently restore some other state.
 */
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-](\d{2}):?(\d{2}))?)?$/i;

/**
 * An ISO_TIME match whose fields name a real calendar day and time of day: Date rolls what does not exist
 * over (2026-02-30 is 2026-03-02, 24:00 the next day), which would restore a state the user did not name.
 */
function realTime(m: RegExpExecArray): boolean {
  const [year, month, day, hour = 0, minute = 0, second = 0, zoneHours = 0, zoneMinutes = 0] = m.slice(1).map((f) => (f === undefined ? undefined : Number(f)));
  const daysInMonth = new Date(Date.UTC(year!, month!, 0)).getUTCDate(); // day 0 of the next month
  return month! >= 1 && month! <= 12 && day! >= 1 && day! <= daysInMonth && hour <= 23 && minute <= 59 && second <= 59 && zoneHours <= 23 && zoneMinutes <= 59;
}

/**
 * --until: a whole number is a commit sequence (as a bigint, exact past 2^53: restore compares
 * sequences as the u64s the stream holds), an ISO 8601 date-time a time; anything else is
 * refused, a sequence past the u64 range too (no stream has such a commit: it read as "the last
 * state" without a word).
 */
function parseUntil(v: string | undefined): bigint | Date | undefined {
  if (v === undefined) return undefined;
  if (/^\d+$/.test(v)) {
    const seq = BigInt(v);
    if (seq > MAX_COMMIT_SEQUENCE) throw new WalnutError(`WALNUT_INVALID_ARGUMENT: --until as a commit sequence must be at most 2^64 - 1 (a stream's sequences are u64s), not ${v.length > 40 ? `${v.slice(0, 40)}...` : v}`, { code: 'WALNUT_INVALID_ARGUMENT', reason: 'until' });
    return seq;
  }
  const m = ISO_TIME.exec(v);
  const d = m !== null && realTime(m) ? new Date(v) : undefined;
  if (d === undefined || Number.isNaN(d.getTime())) {
    throw new WalnutError(`WALNUT_INVALID_ARGUMENT: --until must be a commit sequence (a whole number >= 0) or an ISO 8601 time such as 2026-11-22T23:00:00Z, not ${JSON.stringify(v)}`, { code: 'WALNUT_INVALID_ARGUMENT', reason: 'until' });
  }
  return d;
}

function program(setExit: (code: number) => void): Command {
  const cli = new Command('walnut')
    .description('walnut: a WAL engine whose files are SQLite\'s own; tools for any SQLite database in WAL mode')
    .version(require('../../package.json').version)
    .exitOverride()
    // a usage error (unknown command or option, missing argument) is one line naming the code,
    // as every other failure is (commander printed "error: ..." and the whole help)
    .configureOutput({ outputError: (message) => failed('WALNUT_INVALID_ARGUMENT', `${message.trim().replace(/^error: /, '')} (walnut --help)`) })
    // (restore's paths are optional to the parser only: see restore below)
    .configureHelp({ subcommandTerm: (command) => (command.name() === 'restore' ? 'restore [options] <stream> <db>' : new Help().subcommandTerm(command)) })
    .hook('preAction', (_, command) => {
      jsonOutput.wanted = command.opts()['json'] === true;
      jsonOutput.lines = command.name() === 'replicate' || command.name() === 'replica';
    })
    .addHelpText('after', '\nExit status: 0 done and healthy, 1 a check found problems, 2 a usage or runtime error (one line on stderr\nnaming the WalnutError code; with --json also {"error":{"code":...,"message":...}} on stdout), 3 a restore\n--nats that stopped at a gap in the stream\'s log (logGap). When stdout is closed early (| head), the rest of\nthe output is dropped and the status is the one the command would have had; export to a closed stdout\nstops and exits 2.');

  cli.command('inspect <db>')
    .description('read the database header, WAL and -shm without changing anything')
    .option('--json', 'one JSON object on stdout')
    .addHelpText('after', '\nExample:\n  walnut inspect app.db --json')
    .action(async (db: string, o: { json?: boolean }) => {
      const { inspect } = await import('../integrity/inspect');
      print(inspect(db) as unknown as Out, o.json === true);
    });

  cli.command('verify <db>')
    .description('integrity checks: 1 headers, WAL chain and -shm; 2 b-tree structure; 3 overflow chains; 4 cross-references and freelist; 5 schema')
    .option('--level <n>', 'check level 1..5; each includes the ones below', '5')
    .option('--busy-timeout <ms>', BUSY_TIMEOUT_HELP, String(DEFAULT_BUSY_TIMEOUT_MS))
    .option('--json', 'one JSON object on stdout')
    .addHelpText('after', '\nExit status 1 when anything is found.\nExample:\n  walnut verify app.db --level 5 --json')
    .action(async (db: string, o: { level: string; busyTimeout: string; json?: boolean }) => {
      const busyTimeout = busyTimeoutMs(o.busyTimeout);
      const { verify } = await import('../integrity/verify');
      // (Number() took '0x3', '3e0', ' 4' for levels: only the digits are)
      const r = await verify(db, /^[1-5]$/.test(o.level) ? Number(o.level) : Number.NaN, { busyTimeout });
      if (o.json === true) print(r as unknown as Out, true);
      else {
        // one line per finding: level, kind, where, what
        print({ ok: r.ok, level: r.level, journalMode: r.journalMode, pages: r.pages, issues: r.issues.length }, false);
        for (const i of r.issues) {
          const where = [i.pgno !== undefined ? `page ${i.pgno}` : '', i.frame !== undefined ? `frame ${i.frame}` : ''].filter(Boolean).join(', ');
          process.stdout.write(`  L${i.level}  ${i.kind.padEnd(22)}  ${where ? `[${where}] ` : ''}${i.message}\n`);
        }
      }
      if (!r.ok) setExit(1);
    });

  cli.command('recover <db>')
    .description('rebuild the -shm from the -wal as SQLite recovery would')
    .option('--repair', 'first repair damaged frames from the FEC sidecar (<db>-wal-fec), and a damaged WAL header from it or, with no sidecar, from frame 1 (as verify says: wal-header-repairable)')
    .option('--busy-timeout <ms>', `${BUSY_TIMEOUT_HELP} (not with --repair, which waits ${DEFAULT_BUSY_TIMEOUT_MS})`, String(DEFAULT_BUSY_TIMEOUT_MS))
    .option('--json', 'one JSON object on stdout')
    .addHelpText('after', '\nExample:\n  walnut recover app.db --repair')
    .action(async (db: string, o: { repair?: boolean; busyTimeout: string; json?: boolean }) => {
      const busyTimeout = busyTimeoutMs(o.busyTimeout);
      if (o.repair && busyTimeout !== DEFAULT_BUSY_TIMEOUT_MS) throw new WalnutError(`WALNUT_INVALID_ARGUMENT: --busy-timeout is not taken with --repair (its recovery waits ${DEFAULT_BUSY_TIMEOUT_MS} ms)`, { code: 'WALNUT_INVALID_ARGUMENT', reason: 'busyTimeout' });
      await requireFile(db);
      const { inspect } = await import('../integrity/inspect');
      if (o.repair) {
        const { recoverWithRepair } = await import('../fec/recover');
        const r = await recoverWithRepair(db);
        print({ walFrames: r.walFrames, commits: inspect(db).commits, pageSize: r.pageSize, repairedFrames: r.repairedFrames, restoredHeader: r.restoredHeader, fallback: r.fallback }, o.json === true);
        return;
      }
      const { rebuildWalIndex } = await import('../wal-index/recover');
      const r = await rebuildWalIndex(db, { busyTimeout });
      print({ walFrames: r.walFrames, commits: inspect(db).commits, pageSize: r.pageSize, repairedFrames: 0 }, o.json === true);
    });

  cli.command('checkpoint <db>')
    .description('copy committed frames into the database file (SQLite\'s PRAGMA wal_checkpoint)')
    .option('--mode <mode>', 'passive | full | restart | truncate', 'passive')
    .option('--busy-timeout <ms>', BUSY_TIMEOUT_HELP, String(DEFAULT_BUSY_TIMEOUT_MS))
    .option('--json', 'one JSON object on stdout')
    .addHelpText('after', '\nExit status 1 when busy (the mode could not do all it asks: SQLite\'s busy = 1).\nExample:\n  walnut checkpoint app.db --mode truncate --json')
    .action(async (db: string, o: { mode: string; busyTimeout: string; json?: boolean }) => {
      const mode = checkpointMode(o.mode); // before the open, which creates (and removes) a -wal and -shm
      const busyTimeout = busyTimeoutMs(o.busyTimeout);
      await requireFile(db);
      const { open } = await import('../open');
      // a checkpoint never changes the journal mode; the close is SQLite's last connection's (no -wal/-shm left when nobody else has the database open).
      // Its refusal of a rollback-journal database comes from that open (convert: false), worded as the
      // others' (refuseRollbackJournal): no inspect() first, which read the directory before the
      // open could settle a killed restore
      const store = await open(db, { autoCheckpoint: false, convert: false, busyTimeout }).catch(async (e: unknown) => {
        if (e instanceof WalnutError && (e as { reason?: string }).reason === 'NotWalMode') await refuseRollbackJournal(db, 'checkpoint');
        throw e;
      });
      try {
        const r = await store.checkpoint(mode);
        print({ mode: r.mode, busy: r.busy, walFrames: r.walFrames, checkpointedFrames: r.checkpointedFrames }, o.json === true);
        // not done: `walnut checkpoint --mode truncate && <copy the database>` must not go on (exit 0
        // read as done while another connection kept the WAL from being cut)
        if (r.busy) setExit(1);
      } finally {
        await store.close();
      }
    });

  cli.command('export <db>')
    .description('an ARKHEXP1 stream of the database and its commits (stdout unless -o; not a terminal unless -o -)')
    .option('-o, --output <file>', 'write the stream to a file (never the database, its -wal, -shm, -wal-fec or -journal; - is stdout); a file it created is removed when the export fails (with --follow: until the file holds the database as of the start, then kept)')
    .option('--force', 'replace an existing output file: the new stream is written beside it and renamed over it once whole (with --follow: once it holds the database as of the start); until then a failed or interrupted export leaves the old file as it was')
    .option('--follow', 'keep exporting new commits until interrupted')
    .option('--read-only', 'write nothing to the database or its -wal: no checkpoint and no removal of the -wal at the end (as a read-only SQLite connection), no WAL restart with --follow')
    .option('--busy-timeout <ms>', BUSY_TIMEOUT_HELP, String(DEFAULT_BUSY_TIMEOUT_MS))
    .option('--json', 'summary as one JSON object on stdout (needs -o)')
    .addHelpText('after', '\nExit status 2 when the reader of stdout goes away before the stream ends.\nExample:\n  walnut export app.db -o app.ark\n  walnut export app.db --follow | ssh backup "cat > app.ark"')
    .action(async (db: string, o: { output?: string; force?: boolean; follow?: boolean; readOnly?: boolean; busyTimeout: string; json?: boolean }) => {
      const busyTimeout = busyTimeoutMs(o.busyTimeout);
      const file = o.output === '-' || namesOwnSocket(o.output, 1) ? undefined : o.output; // -o - is stdout, as restore's - is stdin
      // (-o '' is no file: refused by openExportOutput below, never taken for stdout)
      if (o.json && (file === undefined || namesOwnStdoutStream(file))) throw new WalnutError('WALNUT_INVALID_ARGUMENT: --json needs -o FILE (stdout carries the stream, also when -o names it)', { code: 'WALNUT_INVALID_ARGUMENT', reason: 'json' });
      // no -o at a terminal: the binary stream went onto the screen (its control bytes taken for
      // escape sequences), exit 0; as gzip, only when asked for by name (-o -)
      if (o.output === undefined && process.stdout.isTTY === true) {
        throw new WalnutError('WALNUT_INVALID_ARGUMENT: refusing to write the export stream to a terminal: give -o FILE or redirect stdout (-o - writes it there anyway)', { code: 'WALNUT_INVALID_ARGUMENT', reason: 'terminal' });
      }
      await refuseRollbackJournal(db, 'export'); // (inspect: a clear error for a missing file, a directory or a non-database) before any output exists
      const { createExportStream, failWhenOutputRemoved, openExportOutput, openExportReplacement, refuseExportTarget } = await import('../export/stream');
      const created = file !== undefined && absent(file); // ours to remove if the export fails
      let bytes = 0;
      if (file === undefined) refuseExportTarget(db, process.stdout); // `>> app.db`: the shell made the database our stdout
      // --force over an existing file: the new stream beside it, put in place of FILE once whole
      // (one-shot), or once it holds the database's state as of the start (--follow: at the
      // stream's 'caughtUp'); until then FILE is the old backup, as it was, whatever happens
      let replacement: ExportReplacement | null = null;
      let opened = false; // (a FILE that appeared between absent() and its open is not ours)
      let stream: ExportReadable | null = null;
      let target: Writable | null = null;
      /** --follow: the stream's first bytes that hold the database as of the start ('caughtUp'). */
      let caughtUpAt: number | null = null;
      // a follow's file is a backup once it holds those bytes: with --force once renamed over
      // FILE; any other FILE (one it created, a FIFO, a device) once written that far; stdout from
      // the start, as before. (A FIFO counted from the start: `--follow -o PIPE` stopped before any
      // reader came exited 0 saying "8271 bytes", none of which anybody had read.)
      const holdsBackup = (): boolean =>
        replacement !== null ? replacement.replaced : file === undefined || (caughtUpAt !== null && target !== null && (target as fs.WriteStream).bytesWritten >= caughtUpAt);
      // what a failed or interrupted export leaves where it has no backup to show yet: nothing
      // that looks like one (the new file beside FILE with --force, FILE stays as it was; or the
      // FILE it created). A --follow's file that holds a backup is kept whatever happens later: it
      // restores to its last complete commit (removing it on a later failure, a full disk after
      // hours, lost the whole backup; with --force the old one was gone already)
      const discardOutput = (): void => {
        replacement?.abandon();
        if (created && opened && !(o.follow && holdsBackup()) && stillOurs()) fs.rmSync(file!, { force: true });
      };
      /** FILE's name still names the file this export created (not a file the user made there after removing it). */
      const stillOurs = (): boolean => {
        const fd = (target as { fd?: unknown } | null)?.fd;
        try {
          const [own, named] = [fs.fstatSync(fd as number), fs.lstatSync(file!)];
          return own.dev === named.dev && own.ino === named.ino;
        } catch {
          return typeof fd !== 'number'; // (no descriptor to tell by: as before)
        }
      };
      // interrupted by SIGINT, SIGTERM or SIGHUP (./signals) with no backup to leave: the output
      // discarded, then the signal ends the process as it would have
      const abandoned = (signal: NodeJS.Signals): void => {
        discardOutput();
        process.kill(process.pid, signal);
      };
      // --follow runs until interrupted: SIGINT, SIGTERM or SIGHUP (walnut replicate and replica
      // stop on the same), each ending it the same way once it has a backup to leave (`abandoned`
      // before that): a last pass puts every commit made before the signal in the stream (as
      // `walnut replicate` publishes them), then the stream ends and the command exits 0. Cut
      // where it was, a backup stopped by systemd lacked the commits of the last pass interval
      // or more (38 of a python3 writer's, once). When the output does not take them within
      // EXPORT_STOP_TIMEOUT_MS (a reader that stopped reading) the stream is cut, exit 2
      // (StopTimeout); a second signal cuts it at once (exit 0, as before)
      let cutOnSecondSignal: (() => void) | null = null;
      let stopDeadline: ReturnType<typeof setTimeout> | null = null;
      // Given up on the output after a signal (EXPORT_STOP_TIMEOUT_MS passed without the output
      // taking the last pass: `failure` StopTimeout; or a second signal: null): the export is cut
      // and the command ends without waiting for its output any more. pipeline() waits for the
      // output to finish, and a pipe whose reader stopped reading (`| ssh` with the network gone,
      // a FIFO) never does: it stayed alive until SIGKILL, also after printing its error. The
      // writes still queued to the output are not waited for at the exit (outputAbandoned).
      let outputGivenUp: (failure: WalnutError | null) => void = () => undefined;
      const givenUp = new Promise<{ failure: WalnutError | null }>((resolve) => {
        outputGivenUp = (failure) => {
          output.abandoned = true;
          stream?.destroy();
          resolve({ failure });
        };
      });
      const interrupted = (signal: NodeJS.Signals): void => {
        if (stream === null || !holdsBackup()) {
          abandoned(signal);
          return;
        }
        // pipeline() destroys its target with the source's premature close: stdout then emits
        // that 'error', which is no failure of the output here (see watchOutput)
        output.interrupted = true;
        cutOnSecondSignal = onStopSignal(() => outputGivenUp(null));
        stopDeadline = setTimeout(() => outputGivenUp(new WalnutError(`WALNUT_IO: the export's output did not take its last records within ${EXPORT_STOP_TIMEOUT_MS} ms of the signal: the stream was cut (it restores to its last complete commit)`, { code: 'WALNUT_IO', reason: 'StopTimeout' })), EXPORT_STOP_TIMEOUT_MS);
        stream.stop().catch(() => undefined); // (its failure is pipeline's, below)
      };
      // listening before any file is made: a signal between the new file's creation and these
      // handlers ended the process by its default action and left that file behind
      const stopListening = o.follow || file !== undefined ? onStopSignal(o.follow ? interrupted : abandoned) : () => undefined;
      try {
        replacement = file !== undefined && o.force === true ? openExportReplacement(db, file) : null;
        target = replacement !== null ? replacement.output : file !== undefined ? openExportOutput(db, file, { force: o.force === true }) : process.stdout;
        opened = true;
        const exported = (stream = createExportStream(db, { follow: o.follow === true, busyTimeout, readOnly: o.readOnly === true }));
        const follower = o.follow ? replacement : null;
        follower?.output.once('error', () => undefined); // (reported by pipeline below)
        exported.once('caughtUp', (at: number) => {
          caughtUpAt = at;
          follower?.replaceAt(at); // a failure fails the output: pipeline below
        });
        const bar = o.follow || file === undefined ? progress('export', 0, true) : progress('export', fs.statSync(db).size, o.json === true);
        exported.on('data', (c: Buffer) => bar.update((bytes += c.length)));
        exported.on('end', () => bar.stop());
        target.on('error', () => undefined); // reported by pipeline below
        // a follow's FILE removed by the user fails it (the commits after would go to no file)
        const written = o.follow && file !== undefined ? pipeline(exported, failWhenOutputRemoved(target as Writable & { fd: number | null }, file), target) : pipeline(exported, target);
        const settled = written.catch((e) => {
          const code = (e as { code?: string }).code;
          if (code === 'ERR_STREAM_PREMATURE_CLOSE') return; // --follow ended by a stop signal
          discardOutput();
          // `bytes` counts what the export produced, not what the reader read (a pipe buffers up to
          // 64 KiB and more may be in flight; a reader gone before the start read nothing): an
          // upper bound, said as one
          if (code === 'EPIPE') throw new WalnutError(`WALNUT_IO: the reader of the export stream went away before the stream ended (EPIPE): its copy is incomplete (the export had produced ${bytes} bytes; the reader read at most that many)`, { code: 'WALNUT_IO', reason: 'EPIPE', cause: e });
          throw e;
        }).finally(() => follower?.close());
        settled.catch(() => undefined); // (awaited in the race below; not once the output is given up)
        const given = await Promise.race([settled.then(() => null), givenUp]);
        if (given !== null) {
          // (the --force file is closed by pipeline's settling, above, if it comes: closed here as
          // well, unawaited, it was closed twice, could reject unhandled, and its descriptor could
          // go while the destroyed pipeline's last write was still queued on it)
          // a stop that timed out fails the command (the commits it did not take are not in the
          // stream), as in `walnut replicate`; a second signal ends it as an interruption (exit 0)
          if (given.failure !== null) throw given.failure;
        }
        if (!o.follow) await replacement?.replace();
      } catch (e) {
        discardOutput(); // (a refusal before any file was made: nothing to discard)
        throw e;
      } finally {
        stopListening();
        (cutOnSecondSignal as (() => void) | null)?.();
        if (stopDeadline !== null) clearTimeout(stopDeadline);
      }
      const summary = { bytes };
      if (o.json) print(summary, true);
      else process.stderr.write(`walnut export: ${bytes} bytes\n`);
    });

  // both paths optional to the parser: a missing one is named here by what it is in each form
  // (the parser said "missing required argument 'stream'" to a --nats --stream restore that
  // lacked its database path)
  cli.command('restore [stream] [db]')
    .usage('[options] <stream> <db>\n       | walnut restore [options] --nats <url> --stream <name> <db>')
    .description('build a database from an export stream (- for stdin), or with --nats from a replication stream: walnut restore --nats <url> --stream <name> <db>')
    .option('--until <seqOrTime>', 'the state after this commit sequence, or after the last commit the exporter had seen by this time; refused when before the stream\'s earliest point')
    .option('--force', 'replace an existing database')
    .option('--nats <url>', 'restore from this NATS JetStream (the stream named by --stream; its newest session)')
    .option('--stream <name>', 'the JetStream stream (with --nats)')
    .option('--json', 'one JSON object on stdout')
    .addHelpText('after', '\nExit status 3 when a restore from --nats stopped at a gap in the stream\'s log, before the point asked for\n(the database holds the state before the gap; logGap names the commits missing).\nExample:\n  walnut restore app.ark restored.db --until 2026-11-22T23:00:00Z\n  walnut restore --nats nats://127.0.0.1:4222 --stream app restored.db --until 5000')
    .action(async (src: string | undefined, target: string | undefined, o: { until?: string; force?: boolean; nats?: string; stream?: string; json?: boolean }) => {
      const until = parseUntil(o.until); // before anything is opened or drawn
      const { abandonRestores } = await import('../export/restore');
      // interrupted by SIGINT, SIGTERM or SIGHUP: the new file, still hidden beside the target, is
      // removed (it was left behind, as large as what it had written), then the signal ends the process
      const stopListening = onStopSignal((signal) => {
        abandonRestores();
        process.kill(process.pid, signal);
      });
      try {
        if (await restoreCommand(src, target, until, o) === 'LogGap') setExit(3);
      } finally {
        stopListening();
      }
    });

  cli.command('replicate <db>')
    .description('publish every commit of the database to a NATS JetStream stream until interrupted')
    .requiredOption('--nats <url>', 'NATS server URL(s), comma-separated')
    .requiredOption('--stream <name>', 'JetStream stream (created when missing)')
    .option('--replicas <n>', 'stream replicas when creating it (3 for a 3-node cluster)', '1')
    .option('--interval <ms>', 'print metrics every <ms>', '5000')
    .option('--busy-timeout <ms>', BUSY_TIMEOUT_HELP, String(DEFAULT_BUSY_TIMEOUT_MS))
    .option('--json', 'metrics as JSON lines on stdout')
    .option('--read-only', "write nothing to the database or its -wal (open()'s readOnly: no checkpoint by the replication or at the end, the -wal left as found); an empty database is refused")
    .addHelpText('after', '\nExample:\n  walnut replicate app.db --nats nats://127.0.0.1:4222 --stream app')
    .action(async (db: string, o: { nats: string; stream: string; replicas: string; interval: string; busyTimeout: string; json?: boolean; readOnly?: boolean }) => {
      const every = intervalMs(o.interval);
      const busyTimeout = busyTimeoutMs(o.busyTimeout);
      // the replication's options are checked before the open, as --interval is: a refusal after
      // it had converted a rollback-journal database to WAL mode for good, and checkpointed a
      // WAL-mode one and removed its -wal and -shm (the close of the last connection), for a
      // command that then exited 2 on its own arguments
      const options = { servers: o.nats, stream: o.stream, replicas: digitsAsNumber(o.replicas) };
      (await import('../replicate/publisher')).resolveReplicateOptions(options);
      await requireFile(db);
      // a rollback-journal database is refused before anything is opened, as export and checkpoint
      // refuse it: the store's open converted it to WAL mode for good (every SQLite connection
      // then uses WAL mode), a change nobody asked the command for. An empty file has no journal
      // mode yet: its store writes page 1 in WAL mode, as sqlite3 would, and it is replicated
      const { pageSize } = await refuseRollbackJournal(db, 'replicate');
      const { open } = await import('../open');
      // One listener from before the open to the end, as `walnut replica` has: a SIGINT, SIGTERM
      // or SIGHUP while the store opened had no listener and ended the process by its default
      // action, the store's -wal and -shm left as a crash leaves them. One heard before the
      // replication runs closes the store (as the last connection: no -wal/-shm left), then ends
      // the process by that signal: nothing was published.
      let heardBeforeRun: NodeJS.Signals | null = null;
      let whenRunning: (() => void) | null = null;
      const stopListening = onStopSignal((signal) => {
        if (whenRunning !== null) whenRunning();
        else heardBeforeRun = signal;
      });
      const endBySignalHeard = async (store: Store): Promise<boolean> => {
        if (heardBeforeRun === null) return false;
        await store.close();
        process.kill(process.pid, heardBeforeRun); // (the listener is gone: the default action ends it)
        return true;
      };
      let store: Store;
      try {
        // (convert: false also refuses one switched back to rollback-journal mode since inspect read it)
        // (--read-only: a store that writes nothing, commit/read-only.ts; it gives an empty file no page 1)
        store = await open(db, o.readOnly === true ? { readOnly: true, busyTimeout } : { convert: pageSize === 0, busyTimeout });
      } catch (e) {
        stopListening();
        if (heardBeforeRun !== null) process.kill(process.pid, heardBeforeRun);
        throw e;
      }
      if (await endBySignalHeard(store)) return;
      let r: ReturnType<typeof store.replicateTo>;
      try {
        r = store.replicateTo(options);
      } catch (e) {
        stopListening();
        await store.close(); // (refused by this store: close as the last connection does, leaving no -wal/-shm)
        throw e;
      }
      let lastError: Error | null = null;
      let stopping = false;
      let unpublished: Error | null = null;
      r.on('error', (e: Error) => {
        lastError = e;
        if (stopping && (e as WalnutError).reason === 'StopTimeout') unpublished = e;
        process.stderr.write(`walnut replicate: ${e.message}\n`);
      });
      r.on('lagExceeded', () => process.stderr.write('walnut replicate: lag bound passed; a new session (base image) follows\n'));
      r.on('exportBehind', (m: { exportBehindBytes: number }) => process.stderr.write(`walnut replicate: ${m.exportBehindBytes} bytes committed and not yet read by the publisher (past the lag bound; it waits in the WAL, nothing is dropped)\n`));
      // a replication that ends before the signal stopped for good (another primary took the
      // stream, its worker exited): the command ends with its last error (exit 2) instead of
      // printing metrics that never move
      const ended = new Promise<never>((_, reject) => r.once('end', () => reject(lastError ?? new WalnutError('WALNUT_IO: the replication ended', { code: 'WALNUT_IO' }))));
      await runUntilSignal(every, () => print({ ...r.metrics() }, o.json === true), async () => {
        stopping = true;
        await r.stop();
        await store.close();
      }, ended, (stop) => {
        whenRunning = stop;
        return stopListening;
      });
      // stopped with commits not in the stream is no "done and healthy" (exit 0 was, after the
      // error line: a supervisor took the stream for complete; cli-replicate-interrupted-unpublished)
      if (unpublished !== null) throw unpublished;
      if (r.metrics().session === null) {
        // why, as the last retry told it: a server that answered but would not create or show
        // the stream (--replicas 3 on a server not in a cluster: StreamUnavailable) was
        // told "no NATS server answered", pointing at the network
        const why = lastError as WalnutError | null;
        if (why !== null && why.reason !== undefined && why.reason !== 'Unreachable') {
          const told = withoutCode(why.message).replace(/; retrying$/, '');
          throw new WalnutError(`WALNUT_IO: nothing was published before the stop: ${told}`, { code: 'WALNUT_IO', reason: why.reason });
        }
        throw new WalnutError(`WALNUT_IO: nothing was published: no NATS server answered at ${o.nats} before the stop`, { code: 'WALNUT_IO', reason: 'Unreachable' });
      }
    });

  cli.command('replica <db>')
    .description('keep <db> a read replica of a NATS JetStream stream (created from its newest base image, resumed after a restart) until interrupted')
    .requiredOption('--nats <url>', 'NATS server URL(s), comma-separated')
    .requiredOption('--stream <name>', 'JetStream stream')
    .option('--interval <ms>', 'print the lag every <ms>', '5000')
    .option('--busy-timeout <ms>', BUSY_TIMEOUT_HELP, String(DEFAULT_BUSY_TIMEOUT_MS))
    .option('--json', 'lag as JSON lines on stdout')
    .addHelpText('after', '\nExample:\n  walnut replica --nats nats://127.0.0.1:4222 --stream app replica.db')
    .action(async (db: string, o: { nats: string; stream: string; interval: string; busyTimeout: string; json?: boolean }) => {
      const every = intervalMs(o.interval);
      const busyTimeout = busyTimeoutMs(o.busyTimeout);
      // interrupted by SIGINT, SIGTERM or SIGHUP before the replica exists (waiting for a stream
      // or its first base image): what openReplica made for it goes (its new position file, the
      // base image's restore temporary; both were left behind), then the signal ends the process
      // One listener for the whole command, its handler chosen by the phase: two in turn (this
      // one until openReplica resolved, then runUntilSignal's) lost a signal that came while the
      // process was busy as openReplica resolved, since Node hands a signal to the listener it
      // was queued for, gone by then: the replica ran on (test/hostile/cli-replica-signal-as-opened)
      const { abandonRestores } = await import('../export/restore');
      const { openReplica } = await import('../replicate/replica');
      const { ReplicaPosition } = await import('../replicate/position');
      const { resolvedPath } = await import('../io/real-path');
      // (beside the database file, the path's links followed: ReplicaPosition.fileOf)
      const positionFile = (): string => ReplicaPosition.pathOf(resolvedPath(db));
      const fresh = !fs.existsSync(db) && !fs.existsSync(positionFile());
      let whenOpen: ((signal: NodeJS.Signals) => void) | null = null;
      const stopListening = onStopSignal((signal) => {
        if (whenOpen !== null) {
          whenOpen(signal);
          return;
        }
        abandonRestores();
        if (fresh && !fs.existsSync(db)) fs.rmSync(positionFile(), { force: true });
        process.kill(process.pid, signal);
      });
      // a server that does not answer is told at once and about every 20 s after, as `walnut
      // replicate` tells it (the same line, from the same connection code), while openReplica
      // retries it; it gave up after its 30 s (connectTimeoutMs: exit 2) without a word before
      const onRetry = (e: WalnutError): void => void process.stderr.write(`walnut replica: ${e.message}\n`);
      const r = await openReplica(db, { servers: o.nats, stream: o.stream, onRetry, open: { busyTimeout } }).catch((e: unknown) => {
        stopListening();
        throw e;
      });
      // open: a signal from here on stops it as runUntilSignal stops (one heard before that call is kept for it)
      let heard = false;
      whenOpen = () => void (heard = true);
      r.on('error', (e: Error) => process.stderr.write(`walnut replica: ${e.message}\n`));
      // a commit never reached: rejects once the replica stopped for good (its store failed, a
      // full disk), which ends the command (exit 2) instead of printing a lag that never moves
      const stopped = r.waitFor(Number.MAX_SAFE_INTEGER);
      await runUntilSignal(every, () => print({ ...r.lag() }, o.json === true), () => r.close(), stopped, (stop) => {
        whenOpen = stop;
        if (heard) stop();
        return stopListening;
      });
    });

  cli.command('bench')
    .argument('[scenario]', 'commit, checksum or all (default: all)')
    .description('side-by-side benchmarks: commit (walnut vs better-sqlite3 when installed), checksum')
    .option('--seconds <n>', 'seconds per case, above 0 and at most 3600', '2')
    .option('--json', 'one JSON object on stdout')
    .addHelpText('after', '\nExample:\n  walnut bench commit --json')
    .action(async (scenario: string | undefined, o: { seconds: string; json?: boolean }) => {
      const { runBench } = await import('./bench');
      const rows = await runBench(scenario ?? 'all', digitsAsNumber(o.seconds, true));
      if (o.json) print({ rows }, true);
      else for (const r of rows) process.stdout.write(`${String(r['scenario']).padEnd(10)} ${String(r['system']).padEnd(28)} ${String(r['value']).padStart(12)} ${r['unit']}\n`);
    });
  return cli;
}

/**
 * `walnut restore`, from a file, stdin or (--nats) a replication stream; resolves with its
 * stoppedBy. A restore from NATS that stopped at a gap in the stream's log ('LogGap': the
 * database holds the state before the gap, earlier than the point asked for) exits 3; its
 * summary names the missing commits (logGap). It exited 0, stoppedBy ChecksumChainBroken.
 */
async function restoreCommand(src: string | undefined, target: string | undefined, until: bigint | Date | undefined, o: { force?: boolean; nats?: string; stream?: string; json?: boolean }): Promise<string | null> {
  // '-' is stdin (the stream) or stdout (export -o -) elsewhere in this CLI: as the database it made a file named '-'
  const refuseDash = (db: string): void => {
    if (db === '-') throw new WalnutError("WALNUT_INVALID_ARGUMENT: the database to restore into is a file, not - (stdin/stdout here): name it (./- for a file called -)", { code: 'WALNUT_INVALID_ARGUMENT', reason: 'db' });
  };
  if (o.nats !== undefined || o.stream !== undefined) {
    if (o.nats === undefined || o.stream === undefined || src === undefined || target !== undefined) throw new WalnutError('WALNUT_INVALID_ARGUMENT: a restore from NATS takes --nats <url> --stream <name> and one database path', { code: 'WALNUT_INVALID_ARGUMENT', reason: 'nats' });
    refuseDash(src);
    const { restoreFromNats } = await import('../replicate/restore-nats');
    const r = await restoreFromNats(src, { servers: o.nats, stream: o.stream, until, force: o.force === true });
    print({ commits: r.commits, dbPages: r.dbPages, lastCommitSeq: r.lastCommitSeq, lastCommitTime: r.lastCommitTime, stoppedBy: r.stoppedBy, ...(r.logGap === null ? {} : { logGap: r.logGap }) }, o.json === true);
    return r.stoppedBy;
  }
  if (src === undefined || target === undefined) throw new WalnutError('WALNUT_INVALID_ARGUMENT: restore needs a stream and a database path: walnut restore <stream> <db>', { code: 'WALNUT_INVALID_ARGUMENT', reason: 'db' });
  const db = target;
  refuseDash(db);
  if (namesOwnSocket(src, 0)) src = '-'; // /dev/stdin of a process whose stdin is a socket (namesOwnSocket)
  if (src !== '-') await requireFile(src, 'export stream');
  // stdin a terminal: it waited, silently, for the binary stream to be typed (as export refuses to write it to one)
  else if (process.stdin.isTTY === true) throw new WalnutError('WALNUT_INVALID_ARGUMENT: refusing to read the export stream from a terminal: redirect stdin from the stream (< app.ark) or give its file', { code: 'WALNUT_INVALID_ARGUMENT', reason: 'terminal' });
  // a file is read by restore() itself (large reads, the base image natively): no 'data'
  // listener may watch the stream, so the bar hears of progress from restore()
  const input = src === '-' ? process.stdin : fs.createReadStream(src, { highWaterMark: 1 << 20 });
  const { restore } = await import('../export/restore');
  const bar = progress('restore', src === '-' ? 0 : fs.statSync(src).size, o.json === true);
  const r = await restore(input, db, { until, force: o.force === true, onProgress: (bytes) => bar.update(bytes) }).finally(() => bar.stop());
  print({ commits: r.commits, dbPages: r.dbPages, lastCommitSeq: r.lastCommitSeq, lastCommitTime: r.lastCommitTime, stoppedBy: r.stoppedBy }, o.json === true);
  return r.stoppedBy;
}

/**
 * inspect(db), refusing a database in rollback-journal mode (not an empty file: it has no mode
 * yet) as WALNUT_CANTOPEN reason NotWalMode, before anything is opened: `walnut <verb>` never
 * switches a database's journal mode (every SQLite connection would then use WAL mode), and the
 * message gives the sqlite3 command that does (the library's said "open() converts it unless
 * convert: false", an option no command line has).
 */
async function refuseRollbackJournal(db: string, verb: 'checkpoint' | 'export' | 'replicate'): Promise<InspectReport> {
  const { inspect } = await import('../integrity/inspect');
  const info = inspect(db);
  if (info.journalMode === 'rollback' && info.pageSize !== 0) {
    throw new WalnutError(`WALNUT_CANTOPEN: the database is not in WAL mode but in rollback-journal mode, and walnut ${verb} does not switch it: switch it yourself with sqlite3 ${shellWord(db)} 'PRAGMA journal_mode=WAL', then ${verb} it`, { code: 'WALNUT_CANTOPEN', reason: 'NotWalMode', path: info.path });
  }
  return info;
}

/**
 * `file` as one word of a shell command the user can paste: as it is when it has nothing the
 * shell reads (app.db, /srv/app.db), else in single quotes; one that begins with '-' behind ./
 * (sqlite3 took it for an option).
 */
function shellWord(file: string): string {
  const word = file.startsWith('-') ? `./${file}` : file;
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

/** --mode as a checkpoint mode, checked before anything is opened. */
function checkpointMode(mode: string): CheckpointMode {
  if (!(CHECKPOINT_MODES as readonly string[]).includes(mode)) {
    throw new WalnutError(`WALNUT_INVALID_ARGUMENT: --mode must be one of ${CHECKPOINT_MODES.join(', ')}, not ${JSON.stringify(mode)}`, { code: 'WALNUT_INVALID_ARGUMENT', reason: 'mode' });
  }
  return mode as CheckpointMode;
}

/**
 * The one reading of the command line's numeric options (--replicas, --interval, --seconds;
 * --level is one digit 1..5): the number its decimal digits spell (`fraction`: and an optional decimal fraction),
 * else NaN, which the option's own check refuses naming it. Number() also took '1e3', '0x10',
 * ' 5' and '5.0', so a typo could pass as another value than the one meant; and a whole number
 * past 2^53 - 1 is NaN, not the neighbour Number() rounds it to (9007199254740993 read as
 * ...992, a value nobody typed, in the option's check and in its message).
 */
function digitsAsNumber(text: string, fraction = false): number {
  if (!(fraction ? /^\d+(\.\d+)?$/ : /^\d+$/).test(text)) return Number.NaN;
  const n = Number(text);
  return fraction ? n : Number.isSafeInteger(n) ? n : Number.NaN;
}

/** What --busy-timeout says (verify, recover, checkpoint, export, replicate, replica). */
const BUSY_TIMEOUT_HELP = "how long to wait for a lock another connection holds (a sqlite3 writer's WRITE, a checkpointer's CKPT) before failing WALNUT_BUSY, as sqlite3's .timeout";
/** The library's busyTimeout default, the option's. */
const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/**
 * --interval (from 1) and --busy-timeout (from 0) as a whole number of ms up to the longest
 * timer, checked before anything is opened (a refusal after the store and its replication were
 * running left the process up, printing nothing more).
 */
function intervalMs(interval: string): number {
  return wholeMsOption(interval, 'interval', 1);
}

function busyTimeoutMs(text: string): number {
  return wholeMsOption(text, 'busy-timeout', 0);
}

/** `text` of option --`flag` as a whole number of ms from `min` to LONGEST_TIMER_MS (reason: the option's camelCase name). */
function wholeMsOption(text: string, flag: 'interval' | 'busy-timeout', min: 0 | 1): number {
  const reason = flag === 'interval' ? 'interval' : 'busyTimeout';
  const ms = digitsAsNumber(text);
  if (!/^\d+$/.test(text) || ms < min) throw new WalnutError(`WALNUT_INVALID_ARGUMENT: --${flag} must be a whole number of ms >= ${min}`, { code: 'WALNUT_INVALID_ARGUMENT', reason });
  // past it Node sets a timer to 1 ms (with a TimeoutOverflowWarning on stderr): --interval's
  // report was printed about 600 times a second where the user asked for almost never (NaN:
  // digits past 2^53 - 1)
  if (!(ms <= LONGEST_TIMER_MS)) throw new WalnutError(`WALNUT_INVALID_ARGUMENT: --${flag} must be at most ${LONGEST_TIMER_MS} ms (about 24.8 days), the longest timer Node.js keeps, not ${text.length > 40 ? `${text.slice(0, 40)}...` : text}`, { code: 'WALNUT_INVALID_ARGUMENT', reason });
  return ms;
}

/**
 * Calls `report` every `ms` (and once at the end) until SIGINT, SIGTERM or SIGHUP, then `stop`. A
 * `failed` promise that rejects first (the work stopped for good) also stops, then throws its
 * failure. `listen` hears the signal (onStopSignal's form): a command already listening hands
 * its own listener's later signals on, rather than this adding a second listener (see replica).
 */
async function runUntilSignal(ms: number, report: () => void, stop: () => Promise<void>, failed: Promise<unknown> = new Promise(() => undefined), listen: (handler: () => void) => () => void = onStopSignal): Promise<void> {
  const timer = setInterval(report, ms);
  let stopListening!: () => void;
  const failure = await new Promise<unknown>((resolve) => {
    stopListening = listen(() => resolve(null));
    failed.catch((e: unknown) => resolve(e ?? new Error('stopped')));
  });
  stopListening();
  clearInterval(timer);
  await stop();
  report();
  if (failure !== null) throw failure;
}

/**
 * Once a reader closes stdout or stderr, writes to it fail with EPIPE, reported as an 'error'
 * event that would otherwise end the process with a stack trace. The rest of that output is
 * dropped (the stream is destroyed, later writes are no-ops); pipeline() still sees the error.
 * Any other write error (ENOSPC on a full disk, say) is kept: the command then fails (exit 2).
 * The listeners are added once per process (main() may run many times in one, as in tests).
 */
const output = { watched: false, failed: null as NodeJS.ErrnoException | null, interrupted: false, abandoned: false };
function watchOutput(): void {
  output.failed = null;
  output.interrupted = false;
  output.abandoned = false;
  if (output.watched) return;
  output.watched = true;
  for (const out of [process.stdout, process.stderr]) {
    out.on('error', (e: NodeJS.ErrnoException) => {
      // `walnut export --follow` to stdout ended by SIGINT or SIGTERM: pipeline() destroyed stdout
      // with ERR_STREAM_PREMATURE_CLOSE (the export's stream was cut, as it should be), and this
      // made the interrupted export exit 2 'WALNUT_IO: Premature close' after its summary, where
      // the same export to -o FILE exits 0 (a backup pipe's end looked like its failure)
      if (output.interrupted && e.code === 'ERR_STREAM_PREMATURE_CLOSE') return;
      if (e.code !== 'EPIPE') output.failed ??= e;
    });
  }
}

/** One line on stderr naming the WalnutError code (an OS error without one: by its errno). */
function report(e: unknown): void {
  const err = e as WalnutError & NodeJS.ErrnoException;
  const code = isWalnutError(err) ? err.code : diskFull(e) ? 'WALNUT_FULL' : 'WALNUT_IO';
  const msg = withoutCode(err.message ?? String(e));
  failed(code, `${msg}${err.path && !msg.includes(err.path) ? ` (${err.path})` : ''}`, isWalnutError(err) ? { reason: err.reason, path: err.path } : {});
}

/**
 * A failure told: its line on stderr and, under --json, its object on stdout (unless stdout is
 * what failed, or a one-object command already printed its object: a second would make stdout
 * no longer one JSON value). stdout was left empty, which no JSON reader takes.
 */
function failed(code: string, message: string, details: { reason?: string | undefined; path?: string | undefined } = {}): void {
  const line = oneLine(message);
  process.stderr.write(`walnut: ${code}: ${line}\n`);
  if (!jsonOutput.wanted || output.failed !== null || (jsonOutput.printed > 0 && !jsonOutput.lines)) return;
  const error: Record<string, string> = { code, message: line };
  if (typeof details.reason === 'string') error['reason'] = details.reason;
  if (typeof details.path === 'string') error['path'] = details.path;
  process.stdout.write(JSON.stringify({ error }) + '\n');
}

/** --json among the arguments before a `--` (for a usage error: the parser stopped before the command's options were read). */
function jsonAmong(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * Nothing is at `file` (so a file the export creates there is its own to remove). A path that
 * cannot be looked up (ENAMETOOLONG) counts as not absent: openExportOutput then refuses it
 * (WALNUT_CANTOPEN), where this lstat's raw error was printed as WALNUT_IO.
 */
function absent(file: string): boolean {
  try {
    return fs.lstatSync(file, { throwIfNoEntry: false }) === undefined;
  } catch {
    return false;
  }
}

/**
 * A failure's message as the one line the CLI promises: a newline or other control character
 * in it — from a path or argument the caller gave (`walnut inspect $'a\nb.db'`) — is written
 * escaped (\n, \t, \xNN), not as itself (the message took two lines, the second looking like
 * another line of output).
 */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : c === '\r' ? '\\r' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

/**
 * Resolves once a failed write to stdout has been reported. stdout is synchronous here (a file,
 * a pipe or a terminal on Linux) but a failed write's 'error' event comes on a later tick, after
 * the promise continuations that printed the last lines: the status is decided only after it.
 */
function writeErrorsReported(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The last main() cut its output (an export stopped by a signal whose output did not take its
 * last pass: see the export command): the process exits without waiting for the writes still
 * queued to it (bin/walnut.js), or it would stay alive for as long as a stuck pipe's reader
 * does not read.
 */
export function outputAbandoned(): boolean {
  return output.abandoned;
}

export async function main(argv: string[]): Promise<number> {
  watchOutput();
  Object.assign(jsonOutput, { wanted: jsonAmong(argv), lines: false, printed: 0 }); // (the command's own option once it is parsed)
  let exit = 0;
  const cli = program((code) => (exit = code));
  // no command, or help for one that is not there: the parser printed the whole help on stderr
  // (exit 2, no line naming the code), and did so for `help help` too
  const names = cli.commands.map((c) => c.name());
  if (argv.length === 0) {
    failed('WALNUT_INVALID_ARGUMENT', `a command is needed: ${names.join(', ')} (walnut --help)`);
    return 2;
  }
  if (argv[0] === 'help' && argv[1] === 'help') argv = ['help', ...argv.slice(2)];
  else if (argv[0] === 'help' && argv[1] !== undefined && !argv[1].startsWith('-') && !names.includes(argv[1])) {
    failed('WALNUT_INVALID_ARGUMENT', `unknown command '${argv[1]}' (walnut --help)`);
    return 2;
  }
  try {
    await cli.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (!(e instanceof CommanderError)) {
      report(e);
      return 2;
    }
    exit = e.exitCode === 0 ? 0 : 2; // --help and --version too fail on a stdout that fails
  }
  await writeErrorsReported();
  if (output.failed === null) return exit;
  report(output.failed);
  return 2;
}
