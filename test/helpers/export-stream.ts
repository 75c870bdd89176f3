// Export streams for tests: built by hand, or exported from a database.
import { createExportStream } from '../../lib/export/stream';

/** The whole ARKHEXP1 export stream of `db` (createExportStream, read to its end). */
export async function streamOf(db: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of createExportStream(db)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

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
