// bench/checksum: GB/s at 4 KiB and 1 MiB, walnut side by side with @node-rs/xxhash, the
// CRC-32C packages, the plain SQLite checksum loop (JS and compiled) and Buffer.copy.
'use strict';
const crypto = require('node:crypto');
const { runSync } = require('./harness');
const { checksum } = require('../dist/index.js');
const { nativeChecksum } = require('../dist/native.js');

function optional(name) {
  try {
    return require(name);
  } catch {
    return null;
  }
}

// The plain loop in JS at its best: an aligned Uint32Array view (little-endian host).
function jsWalLoop(words) {
  let s0 = 0;
  let s1 = 0;
  for (let i = 0; i < words.length; i += 2) {
    s0 = (s0 + words[i] + s1) | 0;
    s1 = (s1 + words[i + 1] + s0) | 0;
  }
  return (s0 ^ s1) >>> 0;
}
const scratch = new Uint32Array(3);

async function run() {
  const xxhash = optional('@node-rs/xxhash');
  const sse4 = optional('sse4_crc32');
  const fast = optional('fast-crc32c');
  const rows = [];
  for (const size of [4096, 1 << 20]) {
    const data = Buffer.alloc(size); // unpooled, so 8-byte aligned
    crypto.randomFillSync(data);
    const words = new Uint32Array(data.buffer, data.byteOffset, size / 4);
    const target = Buffer.alloc(size);
    const cases = {
      'xxh3_128 walnut': () => checksum.xxh3_128(data),
      'xxh3_64 walnut': () => checksum.xxh3_64(data),
      'crc32c walnut': () => checksum.crc32c(data),
      'sqliteWal walnut': () => checksum.sqliteWalChecksum(data),
      'sqliteWal plain loop (C++)': () => nativeChecksum.sqliteWalChecksumReference(data, scratch),
      'sqliteWal plain loop (JS)': () => jsWalLoop(words),
      'Buffer.copy': () => data.copy(target),
    };
    if (xxhash) {
      cases['xxh3_128 @node-rs/xxhash'] = () => xxhash.xxh3.xxh128(data);
      cases['xxh3_64 @node-rs/xxhash'] = () => xxhash.xxh3.xxh64(data);
    }
    if (sse4) cases['crc32c sse4_crc32'] = () => sse4.calculate(data);
    if (fast) cases['crc32c fast-crc32c'] = () => fast.calculate(data);
    const hz = runSync(cases, { maxTime: 0.5 });
    const gbps = (name) => (hz[name] * size) / 1e9;
    const copy = gbps('Buffer.copy');
    const fastestCrcPackage = Math.max(sse4 ? gbps('crc32c sse4_crc32') : 0, fast ? gbps('crc32c fast-crc32c') : 0);
    const ratio = (name, peer) => (peer > 0 ? +(gbps(name) / peer).toFixed(2) : null);
    for (const name of Object.keys(cases)) {
      const row = { suite: 'checksum', size, case: name, 'GB/s': +gbps(name).toFixed(2), 'x Buffer.copy': +(gbps(name) / copy).toFixed(2) };
      if (name === 'xxh3_128 walnut' && xxhash) row['x peer'] = ratio(name, gbps('xxh3_128 @node-rs/xxhash'));
      if (name === 'xxh3_64 walnut' && xxhash) row['x peer'] = ratio(name, gbps('xxh3_64 @node-rs/xxhash'));
      if (name === 'crc32c walnut') row['x peer'] = ratio(name, fastestCrcPackage);
      if (name === 'sqliteWal walnut') row['x peer'] = ratio(name, Math.max(gbps('sqliteWal plain loop (C++)'), gbps('sqliteWal plain loop (JS)')));
      rows.push(row);
    }
  }
  // The frame path as the WAL uses it: 64 frames of 4 KiB checksummed in one native call.
  {
    const frames = Buffer.alloc(64 * (24 + 4096));
    crypto.randomFillSync(frames);
    const words = new Uint32Array(frames.buffer, frames.byteOffset, frames.length / 4);
    const jsFrames = () => {
      let s0 = 0;
      let s1 = 0;
      for (let f = 0; f < 64; f++) {
        const base = (f * 4120) / 4;
        s0 = (s0 + words[base] + s1) | 0;
        s1 = (s1 + words[base + 1] + s0) | 0;
        for (let i = base + 6; i < base + 1030; i += 2) {
          s0 = (s0 + words[i] + s1) | 0;
          s1 = (s1 + words[i + 1] + s0) | 0;
        }
      }
      return s0 ^ s1;
    };
    const hz = runSync({
      'frames walnut': () => checksum.sqliteWalFrameChecksums(frames, 4096, [0, 0], [1, 2]),
      'frames plain loop (JS)': jsFrames,
    }, { maxTime: 0.5 });
    const bytes = 64 * 4096;
    const w = (hz['frames walnut'] * bytes) / 1e9;
    const j = (hz['frames plain loop (JS)'] * bytes) / 1e9;
    rows.push({ suite: 'checksum', size: '64x4096', case: 'sqliteWal frames walnut', 'GB/s': +w.toFixed(2), 'x peer': +(w / j).toFixed(2) });
    rows.push({ suite: 'checksum', size: '64x4096', case: 'sqliteWal frames plain loop (JS)', 'GB/s': +j.toFixed(2) });
  }
  return { rows, columns: ['size', 'case', 'GB/s', 'x Buffer.copy', 'x peer'], paths: checksum.checksumPaths() };
}

module.exports = { run };
