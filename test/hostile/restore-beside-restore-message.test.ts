// Hostile: two restores --force of the same target at once. The first one, once its new file is
// renamed over the target, keeps its lock on byte 0 until it has closed the file (what tells
// other restores it is alive); the second one, checking that nothing is writing the target,
// found that lock and refused (WALNUT_BUSY, reason InUse: right) with "an export is writing it;
// stop that export first", sending its user after an export that does not exist (measured with
// two `walnut restore --force` of one target started together: 2 of 20 pairs). The lock holder
// of a file that is a database (SQLite's header) is a restore: the refusal now says so. Held
// deterministically: the second restore runs when the first, its file renamed in, closes it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { restore } from '../../lib/export/restore';
import { WalnutFile } from '../../lib/io/file';
import { newDatabaseStream } from '../helpers/new-database-stream';
import { oneRowOldDatabase } from '../helpers/old-wal-database';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

afterEach(() => {
  vi.restoreAllMocks();
});

describe('a restore --force while another restore of the same target renames its file in', () => {
  it('is refused WALNUT_BUSY (InUse) naming a restore, not an export', async () => {
    const ark = fs.readFileSync(await newDatabaseStream(fs.mkdtempSync(path.join(dir, 'stream-')), false));
    const sub = fs.mkdtempSync(path.join(dir, 'target-'));
    const target = path.join(sub, 'restored.db');
    oneRowOldDatabase(target);
    const close = WalnutFile.prototype.close;
    let second: unknown = undefined;
    vi.spyOn(WalnutFile.prototype, 'close').mockImplementation(async function (this: WalnutFile) {
      // the first restore's file, renamed in and still locked: its close() is what ends that
      const renamedIn = /\.restore-[0-9a-f]{12}$/.test(this.path) && !fs.existsSync(this.path) && fs.existsSync(target);
      if (second === undefined && renamedIn) {
        second = null;
        second = await restore(ark, target, { force: true }).then(() => 'restored', (e: unknown) => e);
      }
      return close.call(this);
    });
    await restore(ark, target, { force: true });
    expect(second).toMatchObject({ code: 'WALNUT_BUSY', reason: 'InUse' });
    const message = (second as Error).message;
    expect(message).toMatch(/another restore/);
    expect(message).not.toMatch(/export/);
  });
});
