// Hostile: abandonRestores() (what `walnut restore`'s SIGINT/SIGTERM handler runs just before the
// signal ends the process) called in the window between a restore's registration and the creation
// of its temporary file. The restore registered the temporary file's name (liveTemporaries, its
// marker entry) and then created the file with an asynchronous open on an I/O thread: a handler
// that ran while that open was queued removed nothing (no file yet), released the entry and
// settled the marker away, and then the open created the file, which the dying process left
// behind, empty and listed nowhere (cli-restore-interrupted, SIGTERM --force, failed so once in a
// whole-suite run; 7-13 of 100 kills under CPU load when the kill came as the marker appeared).
// Here the window is held open: the addon's main I/O lane (FIFO) is kept busy by an open of a
// FIFO with no writer until abandonRestores() has returned, and the restore's source is an
// iterable the test holds, so that by the time the restore asks it for its first chunk whatever
// it creates before reading exists; at that point nothing of the restore may be left beside the
// target (the process would have died by the signal there).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { abandonRestores, restore } from '../../lib/export/restore';
import { WalnutFile } from '../../lib/io/file';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

/** A source that tells when the restore first reads it, then fails when `end` is called. */
function heldSource(): { source: AsyncIterable<Uint8Array>; firstRead: Promise<void>; end: () => void } {
  let reading!: () => void;
  const firstRead = new Promise<void>((r) => (reading = r));
  let end!: () => void;
  const ended = new Promise<void>((r) => (end = r));
  const source = {
    async *[Symbol.asyncIterator]() {
      reading();
      await ended;
      throw new Error('the test ended the source');
    },
  };
  return { source, firstRead, end };
}

describe('abandonRestores() before the restore has created its temporary file', () => {
  for (const force of [false, true]) {
    it(`${force ? 'over an old database (force)' : 'to a new database'}: no temporary file appears after it, the target as it was`, async () => {
      const sub = fs.mkdtempSync(path.join(dir, 'target-'));
      const target = path.join(sub, 'restored.db');
      if (force) {
        const db = new Database(target);
        db.pragma('journal_mode = WAL');
        db.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('old')");
        db.close();
      }
      const old = force ? fs.readFileSync(target) : null;
      const { source, firstRead, end } = heldSource();
      // the main lane busy: an open of a FIFO blocks there until a writer opens it
      const fifo = path.join(dir, `lane-${force}`);
      execFileSync('mkfifo', [fifo]);
      const laneHeld = WalnutFile.open(fifo, { readOnly: true });
      // restore() runs synchronously up to its first await: registered, its temporary file's name live
      const restoring = restore(source, target, { force });
      abandonRestores(); // the signal handler, run before the restore's next step
      const writer = fs.openSync(fifo, 'r+'); // (O_RDWR: never blocks) the lane goes on
      await (await laneHeld).close();
      fs.closeSync(writer);
      await firstRead; // the restore went on: whatever it creates before reading, it has created
      const left = fs.readdirSync(sub).filter((n) => n.includes('.restore-'));
      end();
      await expect(restoring).rejects.toThrow();
      expect(left).toEqual([]);
      if (old === null) expect(fs.readdirSync(sub)).toEqual([]);
      else expect(fs.readFileSync(target).equals(old)).toBe(true);
    });
  }
});
