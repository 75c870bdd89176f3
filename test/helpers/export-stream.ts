// Export streams built by hand for tests.

/** Frames a list of payloads as an ARKHEXP1 stream. */
export function framedStream(payloads: Uint8Array[]): Buffer {
  const parts: Buffer[] = [Buffer.from('ARKHEXP1')];
  for (const p of payloads) {
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(p.length));
    parts.push(len, Buffer.from(p));
  }
  return Buffer.concat(parts);
}
