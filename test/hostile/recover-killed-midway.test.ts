// `walnut recover` killed midway, on a WAL whose chain breaks before the header's mxFrame (a
// damaged frame: what recover is run for). The rebuild copies the segments it rebuilt into the
// -shm under a header that was still valid and still described the old, longer WAL: killed
// after the copy and before the header write, it left that valid header over an index that no
// longer held the frames past the break, so no connection recovered and every reader saw pages
// of a state no commit made (sqlite3: "database disk image is malformed"). The header is now
// invalidated first when the rebuild changes what it describes, and valid again only when
// written whole, so the next connection recovers.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';

import { open } from '../../lib/commit/store';
import { HELPERS } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PS = 4096;
const page = (v: number) => {
  const b = Buffer.alloc(PS, v & 0xff);
  b.writeUInt32BE(v, 0);
  return b;
};

/** First word of every page as the WAL's frames 1..mxFrame leave it (pages never written: absent). */
function expectedFromWal(walPath: string, mxFrame: number): Map<number, number> {
  const wal = fs.readFileSync(walPath);
  const out = new Map<number, number>();
  for (let f = 1; f <= mxFrame; f++) {
    const at = 32 + (f - 1) * (PS + 24);
    out.set(wal.readUInt32BE(at), wal.readUInt32BE(at + 24));
  }
  return out;
}

describe('recover killed midway', () => {
  it('a rebuild killed between its segment copy and its header write leaves a header the next connection recovers', async () => {
    const db = path.join(dir, 'recover-killed.db');
    const store = await open(db, { autoCheckpoint: false });
    onTestFinished(() => store.close());
    // rounds 1..20 write pages 2..201, rounds 21..30 pages 2..101: pages 102..201 last change
    // in round 20 (frames 3801..4000, segment 0); the WAL ends in segment 1 (5,000 frames)
    for (let r = 1; r <= 30; r++) {
      const n = r <= 20 ? 200 : 100;
      await store.commit(Array.from({ length: n }, (_, i) => ({ pgno: i + 2, data: page(r * 1000 + i) })));
    }
    const walPath = `${db}-wal`;
    // damage frame 3,900's last byte (its first word stays): the chain breaks in round 20
    const fd = fs.openSync(walPath, 'r+');
    const at = 32 + 3899 * (PS + 24) + 24 + PS - 1;
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    fs.writeSync(fd, Buffer.from([b[0]! ^ 0x55]), 0, 1, at);
    fs.closeSync(fd);

    // (asynchronously: this process's store gives WRITE back from its event loop)
    const child = spawn(process.execPath, [path.join(HELPERS, 'rebuild-killed-child.js'), db], { stdio: ['ignore', 'pipe', 'pipe'] });
    onTestFinished(() => void child.kill('SIGKILL'));
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const signal = await new Promise<string | null>((resolve) => child.once('exit', (_code, sig) => resolve(sig)));
    expect(signal, out).toBe('SIGKILL');
    expect(out).toContain('copied 3899');

    const next = await open(db, { autoCheckpoint: false });
    onTestFinished(() => next.close());
    const s = await next.snapshot();
    const want = expectedFromWal(walPath, s.mxFrame);
    const wrong: string[] = [];
    for (let p = 2; p <= 201; p++) {
      const got = s.readSync(p).readUInt32BE(0);
      if (got !== want.get(p) && wrong.length < 5) wrong.push(`page ${p}: ${got}, WAL up to frame ${s.mxFrame} says ${want.get(p)}`);
    }
    s.release();
    expect(wrong).toEqual([]);
    expect(s.mxFrame).toBe(3800); // recovered: the 19 commits before the damaged frame
  }, 30_000);
});
