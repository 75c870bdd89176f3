/**
 * fec/recover.ts — `walnut recover --repair`: repairs damaged WAL frames from the sidecar, then
 * rebuilds the -shm from the WAL as SQLite's recovery does, under the same locks.
 */
import { refuseExtraArguments } from '../arguments';
import { rebuildWalIndex } from '../wal-index/wal-index';
import { repairWal, type FecFallback } from './repair';

export interface RepairRecoveryResult {
  walFrames: number;
  pageSize: number;
  repairedFrames: number;
  fallback: FecFallback | null;
}

export async function recoverWithRepair(dbPath: string): Promise<RepairRecoveryResult> {
  refuseExtraArguments('recoverWithRepair', 'a path only', 1, arguments); // (a rejection: this function is async)
  let repaired = 0;
  let fallback: FecFallback | null = null;
  const r = await rebuildWalIndex(dbPath, {
    repairWal: async (wal, recovery) => {
      const report = await repairWal(wal, { recovery });
      repaired += report.repairedFrames.length;
      // recovery may run twice (as the first connection opens the files, then the rebuild): a
      // fallback prunes the groups past the frames it keeps, so a second pass no longer sees the
      // group over the damage and would name another reason (unprotected-tail): the first says why
      fallback ??= report.fallback;
      return report.repairedFrames.length > 0;
    },
  });
  return { ...r, repairedFrames: repaired, fallback };
}
