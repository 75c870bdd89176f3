/**
 * export/stream.ts — the export entry points: an export handle over a connection, and
 * createExportStream(path), a Readable of the ARKHEXP1 stream of a database on disk.
 */
import { PassThrough, type Readable, type Writable } from 'node:stream';

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

export function isRecordSink(x: unknown): x is WalRecordSink {
  return typeof x === 'object' && x !== null && typeof (x as WalRecordSink).appendRecord === 'function' && typeof (x as WalRecordSink).flush === 'function';
}

export function startExport(index: WalIndex, target: WalRecordSink | Writable | WalnutFile, options: ExportOptions = {}): ExportHandle {
  const sink = isRecordSink(target) ? target : new BufferedWalSink(target);
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
