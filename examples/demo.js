#!/usr/bin/env node
// walnut's main job, as far as it exists today: a smoke run of the native core.
// Commits 2,000 4 KiB pages from concurrent writers through the addon's I/O thread, makes them
// durable with fdatasync, reads them back and verifies each with XXH3 and the SQLite WAL
// checksum, and shows the byte-range locks SQLite's protocol relies on. Prints what it did.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { WalnutFile, checksum } = require('../dist/index.js');

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walnut-demo-'));
  const file = path.join(dir, 'pages.bin');
  const PAGE = 4096;
  const PAGES = 2000;
  const f = await WalnutFile.open(file, { create: true });

  const t0 = process.hrtime.bigint();
  const writers = [];
  for (let w = 0; w < 8; w++) {
    writers.push((async () => {
      for (let p = w; p < PAGES; p += 8) {
        const page = Buffer.alloc(PAGE, p & 0xff);
        page.writeUInt32BE(p, 0);
        await f.write(page, 0, PAGE, p * PAGE);
      }
    })());
  }
  await Promise.all(writers);
  await f.fdatasync();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;

  const back = Buffer.alloc(PAGE * PAGES);
  await f.read(back, 0, back.length, 0);
  let bad = 0;
  for (let p = 0; p < PAGES; p++) {
    const expected = Buffer.alloc(PAGE, p & 0xff);
    expected.writeUInt32BE(p, 0);
    if (checksum.xxh3_128(back, 0n, { offset: p * PAGE, length: PAGE }) !== checksum.xxh3_128(expected)) bad++;
  }
  const [s0, s1] = checksum.sqliteWalChecksum(back);

  const other = await WalnutFile.open(file);
  const gotWrite = f.tryLock(120, 1, 'exclusive');
  const otherBlocked = !other.tryLock(120, 1, 'shared');
  await other.close();
  await f.close();

  console.log(`wrote ${PAGES} pages of ${PAGE} bytes from 8 concurrent writers + fdatasync in ${ms.toFixed(1)} ms`);
  console.log(`read back ${back.length} bytes: ${bad === 0 ? 'every page verified (xxh3-128)' : bad + ' pages BAD'}`);
  console.log(`sqlite WAL checksum of the file: ${s0.toString(16)} ${s1.toString(16)}`);
  console.log(`lock byte 120 exclusive: ${gotWrite}; a second descriptor is blocked: ${otherBlocked}`);
  console.log(`checksum paths on this CPU: ${JSON.stringify(checksum.checksumPaths())}`);
  fs.rmSync(dir, { recursive: true, force: true });
  if (bad !== 0 || !gotWrite || !otherBlocked) process.exit(1);
}

main().catch((e) => {
  console.error(`${e.code ?? 'ERROR'}: ${e.message}`);
  process.exit(2);
});
