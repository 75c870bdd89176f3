// Hostile: abandonRestores() (what `walnut restore`'s SIGINT/SIGTERM handler runs just before the
// signal ends the process) called while a restore --force is replacing its target: its old
// companions moved aside and the new file not renamed in yet, or renamed in with the asides not
// yet removed (each an await of a directory sync). The restore had left the set the handler
// abandons before it checkpointed the old database, so the handler did nothing there and the
// dying process left the asides (the old companions under hidden names), the marker, and before
// the rename the temporary file, as large as the new database (cli-restore-interrupted-checkpoint
// kills during that checkpoint). Now the handler finishes by the restore's phase: before the
// rename the companions go back and the temporary file goes; after it the asides go; the marker
// goes either way. Held at those moments deterministically: the directory sync the restore awaits
// there calls abandonRestores() first. The old database's FEC sidecar (-wal-fec) is the
// companion that goes aside (its -wal is checkpointed away before).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { abandonRestores, restore } from '../../lib/export/restore';
import { WalnutFile } from '../../lib/io/file';
import { newDatabaseStream } from '../helpers/new-database-stream';
import { oneRowOldDatabase } from '../helpers/old-wal-database';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const SIDECAR = Buffer.from('the old database sidecar');

/** A restore's own names beside the target: its marker, its temporary file, the asides. */
const restoreNames = (sub: string): string[] => fs.readdirSync(sub).filter((n) => n.includes('.restore-'));
const whos = (file: string): string[] => {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT DISTINCT who FROM t').all() as { who: string }[]).map((r) => r.who);
  } finally {
    db.close();
  }
};

afterEach(() => {
  vi.restoreAllMocks();
});

describe('abandonRestores() while a restore --force replaces its target', () => {
  for (const phase of ['aside', 'renamed'] as const) {
    it(`${phase === 'aside' ? 'companions aside, not renamed yet' : 'renamed in, asides not removed yet'}: nothing of the restore left, the target ${phase === 'aside' ? 'the old database with its companions' : 'the new database'}`, async () => {
      const ark = fs.readFileSync(await newDatabaseStream(fs.mkdtempSync(path.join(dir, 'stream-')), false));
      const sub = fs.mkdtempSync(path.join(dir, 'target-'));
      const target = path.join(sub, 'restored.db');
      oneRowOldDatabase(target);
      fs.writeFileSync(`${target}-wal-fec`, SIDECAR);
      const sync = WalnutFile.syncDirectory.bind(WalnutFile);
      let seen: string[] | null = null;
      vi.spyOn(WalnutFile, 'syncDirectory').mockImplementation(async (d: string) => {
        const names = restoreNames(sub);
        const aside = names.some((n) => n.endsWith('-wal-fec'));
        const temporary = names.some((n) => /\.restore-[0-9a-f]{12}$/.test(n));
        if (seen === null && aside && temporary === (phase === 'aside')) {
          abandonRestores(); // the signal handler, between the restore's turns
          seen = restoreNames(sub);
          expect(fs.existsSync(`${target}-wal-fec`)).toBe(phase === 'aside');
        }
        return sync(d);
      });
      const outcome = await restore(ark, target, { force: true }).then(
        () => 'restored',
        (e: unknown) => `failed: ${(e as Error).message}`,
      );
      expect(seen, 'the restore never reached that moment').not.toBeNull();
      expect(seen).toEqual([]); // what the dying process would have left
      // (the restore went on here, as the process would not: it fails before the rename, whose file is gone)
      expect(outcome.startsWith(phase === 'aside' ? 'failed' : 'restored'), outcome).toBe(true);
      expect(restoreNames(sub)).toEqual([]);
      expect(whos(target)).toEqual([phase === 'aside' ? 'old' : 'new']);
      if (phase === 'aside') expect(fs.readFileSync(`${target}-wal-fec`).equals(SIDECAR)).toBe(true);
      else expect(fs.existsSync(`${target}-wal-fec`)).toBe(false);
    });
  }
});
