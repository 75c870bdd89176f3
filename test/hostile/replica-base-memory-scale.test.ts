// Hostile (WALNUT_SCALE=1 only: a memory bound, and a 256 MiB database): a new replica and
// `restoreFromNats` build a 256 MiB base image in bounded memory. They fetched every part, then
// framed them all into one chunk for restore(): maxRSS 2.4 GiB for a 979 MiB database, ~2.4x its
// size (bench/README.md, base-memory). Each runs in a child process of its own (its own peak
// resident memory, VmHWM: resourceUsage().maxRSS keeps the runner's peak across the child's
// fork and exec) and must stay under 224 MiB (measured: ~130 MiB for 245 MiB; a child
// that does nothing but load walnut and connect is ~90 MiB); held whole it needs ~600 MiB.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('walnut-hostile-base-memory-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const PAGES = 65536; // 256 MiB of 4 KiB pages
const MiB = 1 << 20;
const dist = path.resolve(__dirname, '..', '..', 'dist');

/** Runs `body` (an async function of w = require(dist)) in a child process; its JSON result and maxRSS in bytes. */
function inChild(body: string): { result: unknown; maxRss: number } {
  const script = `const w = require(${JSON.stringify(dist)});
(async () => { const result = await (${body})(w); console.log(JSON.stringify({ result, maxRss: Number(/VmHWM:\\s*(\\d+) kB/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))[1]) * 1024 })); })().catch((e) => { console.error(e); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`child failed (${r.status} ${r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describe.skipIf(NATS_SKIP !== null || process.env.WALNUT_SCALE !== '1')('a 256 MiB base image in bounded memory (WALNUT_SCALE=1)', () => {
  it('a new replica and restoreFromNats each stay under 224 MiB maxRSS', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'), { autoCheckpoint: false });
    try {
      for (let first = 2; first <= PAGES; first += 1024) {
        const pages = Array.from({ length: Math.min(1024, PAGES - first + 1) }, (_, i) => {
          const data = Buffer.alloc(store.pageSize, (first + i) & 0xff);
          data.writeUInt32BE(first + i, 100);
          return { pgno: first + i, data };
        });
        await store.commit(pages, { dbSize: first + pages.length - 1 });
      }
      await store.checkpoint('truncate');
      const r = store.replicateTo({ servers: server.url, stream: 'big', thread: false });
      let based = false;
      r.on('base', () => (based = true));
      await r.ready;
      while (!based) await new Promise((res) => setTimeout(res, 20));
      await r.stop();
      expect(r.metrics().baseHeldPeakBytes).toBeLessThan(16 * MiB);

      const replica = inChild(`async (w) => { const r = await w.openReplica(${JSON.stringify(path.join(dir, 'replica.db'))}, { servers: ${JSON.stringify(server.url)}, stream: 'big' }); const s = await r.store.snapshot(); const n = s.dbSize; s.release(); await r.close(); return n; }`);
      expect(replica.result).toBe(PAGES);
      expect(replica.maxRss).toBeLessThan(224 * MiB);
      const restored = inChild(`async (w) => (await w.restoreFromNats(${JSON.stringify(path.join(dir, 'restored.db'))}, { servers: ${JSON.stringify(server.url)}, stream: 'big' })).dbPages`);
      expect(restored.result).toBe(PAGES);
      expect(restored.maxRss).toBeLessThan(224 * MiB);
    } finally {
      await store.close();
    }
  }, 240_000);
});
