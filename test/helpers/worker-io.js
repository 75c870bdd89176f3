// Worker thread body: loads the addon in its own environment and does async I/O + checksums.
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { WalnutFile, checksum } = require('../../dist/index.js');

(async () => {
  const f = await WalnutFile.open(workerData.file, { create: true });
  const data = Buffer.alloc(1 << 16, workerData.id);
  for (let i = 0; i < 16; i++) await f.write(data, 0, data.length, i * data.length);
  await f.fdatasync();
  const back = Buffer.alloc(16 << 16);
  await f.read(back, 0, back.length, 0);
  await f.close();
  parentPort.postMessage({ id: workerData.id, crc: checksum.crc32c(back), xxh: checksum.xxh3_64(back).toString() });
})().catch((e) => parentPort.postMessage({ error: String(e) }));
