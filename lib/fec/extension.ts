/**
 * fec/extension.ts — the FEC sidecar as a store extension (commit/store.ts StoreExtension):
 * recovery restores a damaged WAL header and repairs damaged frames from the sidecar (repair.ts) before SQLite's truncation would
 * apply, and every written batch is handed to the sidecar writer (writer.ts), whose bounded
 * queue back-pressures the committer; once open, the committed frames no group covers get theirs. store.metrics().fec reports both sides.
 */
import * as fs from 'node:fs';

import type { ResolvedOptions } from '../commit/options';
import type { StoreExtension } from '../commit/store';
import { walnutError } from '../errors';
import { requireRegularFiles } from '../io/real-path';
import { loadCodec } from './codec';
import { newRecoveryMetrics, repairWal } from './repair';
import { FecSidecarWriter, sidecarPathOf } from './writer';

export function fecExtension(fec: ResolvedOptions['fec']): StoreExtension | undefined {
  if (fec === null) return undefined;
  const recovery = newRecoveryMetrics();
  return {
    repairWal: async (wal, scan, events) => {
      const report = await repairWal(wal, { recovery: scan, metrics: recovery, events });
      return report.repairedFrames.length > 0 || report.restoredHeader !== null;
    },
    async beforeOpen(walPath) {
      requireRegularFiles(null, [sidecarPathOf(walPath)]); // (FecSidecarWriter.open checks it again)
      await loadCodec(fec.codec); // a codec package that is not installed
    },
    async attach(ctx) {
      const codec = await loadCodec(fec.codec);
      const why = codec.unsupported(ctx.pageSize);
      if (why !== null) throw walnutError('WALNUT_INVALID_ARGUMENT', `option fec.codec: ${why}`, { reason: 'fec.codec' });
      const writer = await FecSidecarWriter.open(ctx.walPath, codec, fec.repairSymbols, ctx.pageSize, ctx.events, ctx.synchronous !== 'off');
      // the committed frames no group protects yet (a crash before their groups were written)
      if (ctx.committed !== null) writer.protectCommitted(ctx.committed.mxFrame, ctx.committed.salts);
      return {
        onWritten: (txns, firstFrame, salts) => writer.add(txns, firstFrame, salts),
        onWalTruncated: () => writer.reset(),
        room: () => writer.room(),
        metrics: () => ({ fec: { codec: fec.codec, repairSymbols: fec.repairSymbols, ...writer.metrics(), recovery: { ...recovery, fallbacks: { ...recovery.fallbacks } } } }),
        async close(walRemoved) {
          await writer.close();
          // the last connection removed the WAL: its sidecar goes with it
          if (walRemoved && !fs.existsSync(ctx.walPath)) fs.rmSync(sidecarPathOf(ctx.walPath), { force: true });
        },
      };
    },
  };
}
