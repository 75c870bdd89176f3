// `walnut recover` (rebuildWalIndex) on a database other connections have open rebuilds the
// -shm's hash tables under their readers. It zeroed each segment in place and then indexed the
// frames again, so a reader looking a page up meanwhile found no frame (or an older one) and
// read an older version of the page from the database file or the WAL: a snapshot of a WAL
// nobody was writing returned pages of several commits back (240 of 121,600 reads, 40
// rebuilds). SQLite's recovery builds each segment aside and copies it in whole, so the
// entries a reader relies on are never missing: so does walnut's now.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';

import { open } from '../../lib/commit/store';
import { HELPERS } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const page = (v: number) => {
  const b = Buffer.alloc(4096, v & 0xff);
  b.writeUInt32BE(v, 0);
  return b;
};

describe('recover beside live readers', () => {
  it('a snapshot read while another process rebuilds the -shm sees the newest commit of every page', async () => {
    const db = path.join(dir, 'recover-live.db');
    const store = await open(db, { autoCheckpoint: false });
    onTestFinished(() => store.close());
    const N = 200;
    const ROUNDS = 30; // 6,000 frames: two wal-index segments
    for (let r = 1; r <= ROUNDS; r++) await store.commit(Array.from({ length: N }, (_, i) => ({ pgno: i + 2, data: page(r * 1000 + i) })));
    const child = spawn(process.execPath, [path.join(HELPERS, 'rebuild-loop.js'), db, '30'], { stdio: ['ignore', 'pipe', 'inherit'] });
    onTestFinished(() => void child.kill('SIGKILL'));
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let running = true;
    void exited.then(() => (running = false));
    let reads = 0;
    const wrong: string[] = [];
    while (running) {
      const s = await store.snapshot();
      for (let i = 0; i < N; i++) {
        const v = s.readSync(i + 2).readUInt32BE(0);
        reads++;
        if (v !== ROUNDS * 1000 + i && wrong.length < 5) wrong.push(`page ${i + 2}: ${v}`);
      }
      s.release();
      await new Promise(setImmediate);
    }
    expect(await exited).toBe(0);
    expect(out).toContain('done 30');
    expect(reads).toBeGreaterThan(0);
    expect(wrong).toEqual([]);
  }, 30_000);
});
