// Child body for test/hostile/writev-element-accessor.test.ts: WalnutFile.writev / writevSync
// given an array whose element at index 1 is an accessor that, when the addon reads it, shrinks
// (a resizable ArrayBuffer) or transfers (and collects) the buffer at index 0, or throws. Runs in
// a child because the addon used to SIGSEGV there. Prints one JSON line: what the call answered
// and what the file holds.
//   node writev-accessor-child.js <file> shrink|shrinkSync|transfer|transferSync|throw|throwSync
'use strict';
const fs = require('node:fs');
const v8 = require('node:v8');
const vm = require('node:vm');
const { WalnutFile } = require('../../dist/index.js');

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');
const [file, mode] = process.argv.slice(2);
const SIZE = 8 << 20;

(async () => {
  fs.writeFileSync(file, '');
  const f = await WalnutFile.open(file);
  const thrown = new TypeError("the caller's accessor");
  let first;
  let spoil;
  if (mode.startsWith('shrink')) {
    const rab = new ArrayBuffer(SIZE, { maxByteLength: 2 * SIZE });
    first = new Uint8Array(rab).fill(0xaa); // length-tracking
    spoil = () => rab.resize(0);
  } else if (mode.startsWith('transfer')) {
    first = new Uint8Array(SIZE).fill(0xaa);
    spoil = () => {
      structuredClone(first.buffer, { transfer: [first.buffer] });
      gc();
      Array.from({ length: 16 }, () => new Uint8Array(SIZE / 16).fill(0x55)); // take the freed memory again
    };
  } else {
    first = new Uint8Array(16).fill(0xaa);
    spoil = () => {
      throw thrown;
    };
  }
  const buffers = [first];
  Object.defineProperty(buffers, 1, { enumerable: true, get: () => (spoil(), new Uint8Array(4).fill(0xbb)) });
  const out = { mode };
  try {
    out.value = mode.endsWith('Sync') ? f.writevSync(buffers, 0) : await f.writev(buffers, 0);
  } catch (e) {
    out.error = { name: e.constructor.name, code: e.code, reason: e.reason, causeIsThrown: e.cause === thrown };
  }
  await f.close();
  const bytes = fs.readFileSync(file);
  out.size = bytes.length;
  out.distinct = [...new Set(bytes)];
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch((e) => {
  process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n');
});
