// Damage models for WAL files: the mutations the differential recovery test and the fuzzer
// apply to WALs. Deterministic given the random source.
'use strict';

function seededRandom(seed) {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}


const DAMAGE_KINDS = ['truncate', 'header', 'salt', 'checksum', 'pgno', 'commitSize', 'page', 'zeroTail', 'tornAppend'];

/** A damaged copy of `wal` (whose frames have `pageSize`), and a description of the damage. */
function damage(wal, pageSize, kind, rand) {
  const out = Buffer.from(wal);
  const frameSize = pageSize + 24;
  const frames = Math.floor((wal.length - 32) / frameSize);
  const frame = frames > 0 ? rand(frames) : 0;
  const base = 32 + frame * frameSize;
  const flip = (offset) => {
    const bit = rand(8);
    out[offset] = out[offset] ^ (1 << bit);
    return `bit ${bit} of byte ${offset}`;
  };
  switch (kind) {
    case 'truncate': {
      const at = rand(wal.length + 1);
      return { bytes: out.subarray(0, at), what: `truncated to ${at}` };
    }
    case 'header':
      return { bytes: out, what: `header ${flip(rand(32))}` };
    case 'salt':
      return { bytes: out, what: `frame ${frame + 1} salt ${flip(base + 8 + rand(8))}` };
    case 'checksum':
      return { bytes: out, what: `frame ${frame + 1} checksum ${flip(base + 16 + rand(8))}` };
    case 'pgno':
      return { bytes: out, what: `frame ${frame + 1} pgno ${flip(base + rand(4))}` };
    case 'commitSize':
      return { bytes: out, what: `frame ${frame + 1} commit size ${flip(base + 4 + rand(4))}` };
    case 'page':
      return { bytes: out, what: `frame ${frame + 1} page ${flip(base + 24 + rand(pageSize))}` };
    case 'tornAppend': {
      // a writer died mid-append: a copy of the last frame (same salts, stale checksum) or
      // random bytes, whole or torn, after the last commit
      const extra = rand(2) === 0 && frames > 0 ? Buffer.from(wal.subarray(32 + (frames - 1) * frameSize)) : Buffer.alloc(frameSize).map(() => rand(256));
      const keep = rand(2) === 0 ? extra.length : rand(extra.length);
      return { bytes: Buffer.concat([out, extra.subarray(0, keep)]), what: `appended ${keep} torn bytes` };
    }
    case 'zeroTail': {
      const at = 32 + rand(Math.max(1, wal.length - 32));
      out.fill(0, at);
      return { bytes: out, what: `zero-filled from ${at}` };
    }
  }
}

/** Flips bit 6 of byte 100 of frame `frame`'s page (1-based) in the WAL at `walPath`, in place. */
function flipPageByte(walPath, pageSize, frame) {
  const fs = require('node:fs');
  const fd = fs.openSync(walPath, 'r+');
  try {
    const at = 32 + (frame - 1) * (24 + pageSize) + 24 + 100;
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0] ^= 0x40;
    fs.writeSync(fd, b, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}

module.exports = { flipPageByte, seededRandom, damage, DAMAGE_KINDS };
