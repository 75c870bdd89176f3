// bench/file-copy: what WalnutFile's copies cost (native/file.h: async write/writev copy the
// caller's bytes, async read copies into the caller's buffer once done) against the lent
// variants walnut's own memory uses (readLent/writevLent), in one process, alternating in
// rounds. CPU per operation (process.cpuUsage: every thread) over the same file, page cache.
// WALNUT_BENCH_ROUNDS (default 6), WALNUT_BENCH_OPS (default 4000 per case and round).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { WalnutFile } = require('../dist/index.js');

const ROUNDS = Number(process.env.WALNUT_BENCH_ROUNDS || 6);
const OPS = Number(process.env.WALNUT_BENCH_OPS || 4000);

(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walnut-file-copy-'));
  const f = await WalnutFile.open(path.join(dir, 'f'), { create: true });
  await f.writev([new Uint8Array(64 << 20)], 0, 'data');
  const cases = [];
  for (const size of [4096, 1 << 20]) {
    const buf = new Uint8Array(size).fill(7);
    const ops = size === 4096 ? OPS : Math.max(200, OPS / 20);
    cases.push({ name: `read ${size}`, ops, run: (i) => f.read(buf, 0, size, (i * size) % (64 << 20)) });
    cases.push({ name: `readLent ${size}`, ops, run: (i) => f.readLent(buf, 0, size, (i * size) % (64 << 20)) });
    cases.push({ name: `writev ${size}`, ops, run: (i) => f.writev([buf], (i * size) % (64 << 20)) });
    cases.push({ name: `writevLent ${size}`, ops, run: (i) => f.writevLent([buf], (i * size) % (64 << 20)) });
  }
  for (const c of cases) c.cpu = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of r % 2 ? cases.slice().reverse() : cases) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < c.ops; i++) await c.run(i);
      const u = process.cpuUsage(c0);
      c.cpu.push((u.user + u.system) / c.ops);
    }
  }
  const med = (v) => v.slice().sort((a, b) => a - b)[Math.floor(v.length / 2)];
  console.log(`load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}, ${ROUNDS} rounds; CPU µs per operation, median [min..max]`);
  for (const c of cases) console.log(`${c.name.padEnd(18)} ${med(c.cpu).toFixed(2)} [${Math.min(...c.cpu).toFixed(2)}..${Math.max(...c.cpu).toFixed(2)}]`);
  await f.close();
  fs.rmSync(dir, { recursive: true, force: true });
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
