/**
 * fec/recover.ts — `walnut recover --repair`: restores a damaged WAL header and repairs damaged
 * WAL frames from the sidecar, then
 * rebuilds the -shm from the WAL as SQLite's recovery does, under the same locks.
 */
import { refuseExtraArguments } from '../arguments';
import { rebuildWalIndex } from '../wal-index/wal-index';
import { repairWal, type FecFallback, type RestoredHeader } from './repair';

export interface RepairRecoveryResult {
  walFrames: number;
  pageSize: number;
  repairedFrames: number;
  /** The damaged WAL header restored from the sidecar's copy (null: it was not damaged, or could not be: see fallback). */
  restoredHeader: RestoredHeader | null;
  fallback: FecFallback | null;
}

export async function recoverWithRepair(dbPath: string): Promise<RepairRecoveryResult> {
  refuseExtraArguments('recoverWithRepair', 'a path only', 1, arguments); // (a rejection: this function is async)
  let repaired = 0;
  let fallback: FecFallback | null = null;
  let restoredHeader: RestoredHeader | null = null;
  const r = await rebuildWalIndex(dbPath, {
    repairWal: async (wal, recovery) => {
      const report = await repairWal(wal, { recovery });
      repaired += report.repairedFrames.length;
      restoredHeader ??= report.restoredHeader;
      // recovery may run twice (as the first connection opens the files, then the rebuild): a
      // fallback prunes the groups past the frames it keeps, so a second pass no longer sees the
      // group over the damage and would name another reason (unprotected-tail): the first says why
      fallback ??= report.fallback;
      return report.repairedFrames.length > 0 || report.restoredHeader !== null;
    },
  });
  // a header fallback (frame 0) and yet frames: the rebuild restored the header from a live
  // wal-index (wal-index.ts #restoreWalHeaderFromLiveIndex), so nothing is left unrepaired there
  if (fallback !== null && (fallback as FecFallback).frame === 0 && r.walFrames > 0) fallback = null;
  return { ...r, repairedFrames: repaired, restoredHeader, fallback };
}
