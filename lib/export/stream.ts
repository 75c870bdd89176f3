/**
 * export/stream.ts — the export entry points: an export handle over a connection, and
 * createExportStream(path), a Readable of the ARKHEXP1 stream of a database on disk.
 *
 * An export holds a read snapshot of the connection while it runs, and it runs as fast as its
 * sink takes records. When the store closes the connection, the export is cut: its sink calls
 * are abandoned, the export ends with WALNUT_CLOSED and lets its snapshot go, so a sink nobody
 * empties never holds a connection open. The sink then holds a prefix of the stream that ends
 * between records (a restore keeps its complete commits).
 */
import { PassThrough, type Readable, type Writable } from 'node:stream';

import type { WalnutError } from '../errors';
import { WalIndex, type WalIndexOptions } from '../index/wal-index';
import type { WalnutFile } from '../io/file';
import { Exporter, type ExportOptions, type ExportStats } from './exporter';
import { BufferedWalSink, type WalRecordSink } from './framing';

export interface ExportHandle {
  /** Resolves when the export ends (at once after the base and the WAL without follow). */
  readonly done: Promise<ExportStats>;
  /** Ends follow mode; resolves with the final statistics. */
  stop(): Promise<ExportStats>;
  /** Look for new commits now. */
  poke(): void;
}

/** The handle the connection keeps: it can also cut the export (see the header). */
export interface ExportRun extends ExportHandle {
  /** Cuts the export with `reason` (unless it has ended) and resolves once it has ended. */
  cut(reason: WalnutError): Promise<void>;
}

/** The exporter's sink, which cut() detaches: every pending and later call rejects with the reason. */
class CuttableSink implements WalRecordSink {
  readonly #sink: WalRecordSink;
  readonly #cut: Promise<never>;
  #reject: (e: WalnutError) => void = () => undefined;
  #reason: WalnutError | null = null;

  constructor(sink: WalRecordSink) {
    this.#sink = sink;
    this.#cut = new Promise<never>((_, reject) => (this.#reject = reject));
    this.#cut.catch(() => undefined);
  }

  appendRecord(payload: Uint8Array): Promise<void> {
    return this.#unlessCut(() => this.#sink.appendRecord(payload));
  }

  flush(): Promise<void> {
    return this.#unlessCut(() => this.#sink.flush());
  }

  cut(reason: WalnutError): void {
    this.#reason ??= reason;
    this.#reject(this.#reason);
  }

  async #unlessCut(call: () => Promise<void> | void): Promise<void> {
    if (this.#reason !== null) throw this.#reason;
    await Promise.race([call(), this.#cut]);
  }
}

export function isRecordSink(x: unknown): x is WalRecordSink {
  return typeof x === 'object' && x !== null && typeof (x as WalRecordSink).appendRecord === 'function' && typeof (x as WalRecordSink).flush === 'function';
}

export function startExport(index: WalIndex, target: WalRecordSink | Writable | WalnutFile, options: ExportOptions = {}): ExportRun {
  const sink = new CuttableSink(isRecordSink(target) ? target : new BufferedWalSink(target));
  const exporter = new Exporter(index, sink, options);
  const done = exporter.run();
  done.catch(() => undefined); // surfaced through done/stop
  return {
    done,
    stop: () => {
      exporter.stop();
      return done;
    },
    poke: () => exporter.poke(),
    cut: (reason) => {
      exporter.stop();
      sink.cut(reason);
      return done.then(() => undefined, () => undefined);
    },
  };
}

/**
 * A Readable of the database's export stream. Without follow it ends after the base image
 * and the WAL as of now; with follow it runs until destroyed.
 */
export function createExportStream(dbPath: string, options: ExportOptions & WalIndexOptions = {}): Readable {
  const out = new PassThrough();
  let handle: ExportHandle | null = null;
  out.on('close', () => void handle?.stop());
  void (async () => {
    const index = await WalIndex.open(dbPath, { busyTimeout: options.busyTimeout ?? 5000 });
    try {
      handle = startExport(index, out, options);
      await handle.done;
      out.end();
    } finally {
      await index.close();
    }
  })().catch((e) => out.destroy(e));
  return out;
}
