// Crash-trial child: `committers` concurrent loops commit 4-page transactions as fast as they
// can (each loop owns pages 10 + 4w .. 13 + 4w and stamps all four with its transaction
// number), with background auto-checkpoints, and prints "ack <w> <k>" the moment commit k of
// loop w resolves. The parent kills this process with SIGKILL at a random moment.
// With a fourth argument `fec`, the store keeps the FEC sidecar (R = 2), so kills also land
// in the middle of sidecar appends.
// usage: node crash-child.js <db> <synchronous> <committers> [fec]
'use strict';
const { open } = require('../../dist/index.js');

const [db, synchronous, committers, fec] = process.argv.slice(2);
(async () => {
  const store = await open(db, { synchronous, autoCheckpoint: 64, fec: fec === 'fec' ? { repairSymbols: 2 } : false });
  process.stdout.write('ready\n');
  await Promise.all(
    Array.from({ length: Number(committers) }, async (_, w) => {
      for (let k = 1; ; k++) {
        const pages = [];
        for (let j = 0; j < 4; j++) {
          const data = Buffer.alloc(4096, (w + j) & 0xff);
          data.writeUInt32BE(k, 0);
          data.writeUInt32BE(w, 4);
          pages.push({ pgno: 10 + 4 * w + j, data });
        }
        await store.commit(pages);
        process.stdout.write(`ack ${w} ${k}\n`);
      }
    }),
  );
})().catch((e) => {
  process.stdout.write(`error ${e.code} ${e.message}\n`);
  process.exit(1);
});
