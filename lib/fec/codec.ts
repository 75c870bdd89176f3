/**
 * fec/codec.ts — the erasure codes behind the -wal-fec sidecar, behind one small interface:
 * K source symbols (WAL pages, back to back) -> repair data for R repair symbols, and back from
 * any K of the K + R symbols (`present` flags: sources first, then repairs).
 *
 * - `rs` (default, id 1): systematic Cauchy Reed-Solomon over GF(2^8) in the addon
 *   (native/fec/rs.h), SSSE3/AVX2 nibble-table multiply; K + R <= 256, repair data = R * T bytes.
 *   MDS: any R erasures are repaired.
 * - `raptorq` (id 2): the `raptorq` package (wasm build of the Rust crate; optional dependency,
 *   loaded on first use). Repair data = R serialized packets of 4 + T bytes (source block 0,
 *   24-bit ESI, symbol). A fountain code: with R erasures it usually, not always, decodes
 *   (RaptorQ's failure probability with no extra symbols is about 1%); measured ~20-30 MB/s,
 *   far off the commit path's speed: for users who want it, documented as slow. Groups are
 *   kept under RAPTORQ_MAX_GROUP_BYTES so that the object is a single source block. Symbol
 *   sizes are 16-bit in RFC 6330, so 64 KiB pages need codec 'rs'.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

import { describeValue } from '../arguments';
import { walnutError } from '../errors';
import { nativeFec } from '../native';

export type FecCodecName = 'rs' | 'raptorq';

export interface FecCodec {
  readonly name: FecCodecName;
  /** The codec byte in a sidecar group header. */
  readonly id: number;
  /** Largest R accepted. */
  readonly maxRepair: number;
  /** Largest K for symbols of `symbolSize` bytes and R repair symbols (at most 255: the sidecar's limit). */
  maxSources(symbolSize: number, r: number): number;
  /** Null when the codec can encode symbols of this size, else why not. */
  unsupported(symbolSize: number): string | null;
  repairBytes(symbolSize: number, r: number): number;
  encode(sources: Uint8Array, k: number, symbolSize: number, r: number): Uint8Array;
  /** Restores the missing sources in place; false when the symbols present do not suffice. */
  decode(sources: Uint8Array, present: Uint8Array, repair: Uint8Array, k: number, symbolSize: number, r: number): boolean;
}

export const rsCodec: FecCodec = {
  name: 'rs',
  id: 1,
  maxRepair: 16,
  maxSources: (_symbolSize, r) => 255 - r,
  unsupported: () => null,
  repairBytes: (symbolSize, r) => symbolSize * r,
  encode(sources, k, symbolSize, r) {
    const repair = new Uint8Array(symbolSize * r);
    nativeFec.rsEncode(sources, repair, k, r, symbolSize);
    return repair;
  },
  decode(sources, present, repair, k, symbolSize, r) {
    return nativeFec.rsDecode(sources, repair, present, k, r, symbolSize);
  },
};

/** Largest group (K * T) encoded as one RaptorQ source block. */
export const RAPTORQ_MAX_GROUP_BYTES = 4 << 20;

interface RaptorqModule {
  initSync(module: Uint8Array): unknown;
  Encoder: { with_defaults(data: Uint8Array, mtu: number): { encode(r: number): Uint8Array[]; free(): void } };
  Decoder: { with_defaults(length: bigint, mtu: number): { decode(packet: Uint8Array): Uint8Array | undefined; free(): void } };
}

let raptorq: RaptorqModule | null = null;

async function loadRaptorq(): Promise<RaptorqModule> {
  if (raptorq !== null) return raptorq;
  let entry: string;
  try {
    entry = createRequire(__filename).resolve('raptorq/raptorq.js');
  } catch (e) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', "codec 'raptorq' needs the optional package raptorq (npm install raptorq)", { reason: 'fec.codec', cause: e });
  }
  // The package is a self-contained ES module (wasm-bindgen output, no imports). This file is
  // CommonJS, where import() of it is not available in every host (TypeScript turns import()
  // into require(); test runners' VMs refuse a Function-built import()), so its source is
  // evaluated as a function body with the `export` keywords removed.
  const source = fs
    .readFileSync(entry, 'utf8')
    .replace(/^export (class|function|const|let) /gm, '$1 ')
    .replace(/^export \{[^}]*\};?$/gm, '')
    .replace(/^export default [^;]*;$/gm, '')
    .replace(/import\.meta\.url/g, JSON.stringify(pathToFileURL(entry).href));
  const mod = new Function(`${source}\nreturn { initSync, Encoder, Decoder };`)() as RaptorqModule;
  mod.initSync(fs.readFileSync(entry.replace(/raptorq\.js$/, 'raptorq_bg.wasm')));
  raptorq = mod;
  return mod;
}

function raptorqCodec(rq: RaptorqModule): FecCodec {
  return {
    name: 'raptorq',
    id: 2,
    maxRepair: 255,
    maxSources: (symbolSize) => Math.max(1, Math.min(255, Math.floor(RAPTORQ_MAX_GROUP_BYTES / symbolSize))),
    // RFC 6330 symbol sizes are 16-bit: a 64 KiB page cannot be one symbol
    unsupported: (symbolSize) => (symbolSize > 65535 ? `codec 'raptorq' takes symbols of at most 65,535 bytes; use codec 'rs' for ${symbolSize}-byte pages` : null),
    repairBytes: (symbolSize, r) => (symbolSize + 4) * r,
    encode(sources, k, symbolSize, r) {
      const enc = rq.Encoder.with_defaults(sources.subarray(0, k * symbolSize), symbolSize);
      try {
        const packets = enc.encode(r);
        const repairs = packets.slice(packets.length - r);
        const out = new Uint8Array((symbolSize + 4) * r);
        repairs.forEach((p, j) => {
          if (p.length !== symbolSize + 4 || p[0] !== 0) throw walnutError('WALNUT_INVALID_ARGUMENT', 'raptorq split the group into several source blocks', { reason: 'fec' });
          out.set(p, j * (symbolSize + 4));
        });
        return out;
      } finally {
        enc.free();
      }
    },
    decode(sources, present, repair, k, symbolSize, r) {
      const dec = rq.Decoder.with_defaults(BigInt(k * symbolSize), symbolSize);
      try {
        const packet = new Uint8Array(symbolSize + 4);
        let out: Uint8Array | undefined;
        for (let i = 0; i < k && out === undefined; i++) {
          if (!present[i]) continue;
          packet[0] = 0;
          packet[1] = (i >> 16) & 0xff;
          packet[2] = (i >> 8) & 0xff;
          packet[3] = i & 0xff;
          packet.set(sources.subarray(i * symbolSize, (i + 1) * symbolSize), 4);
          out = dec.decode(packet);
        }
        for (let j = 0; j < r && out === undefined; j++) {
          if (present[k + j]) out = dec.decode(repair.subarray(j * (symbolSize + 4), (j + 1) * (symbolSize + 4)));
        }
        if (out === undefined || out.length < k * symbolSize) return false;
        for (let i = 0; i < k; i++) if (!present[i]) sources.set(out.subarray(i * symbolSize, (i + 1) * symbolSize), i * symbolSize);
        return true;
      } finally {
        dec.free();
      }
    },
  };
}

/** The codec named `name` (raptorq is loaded on first use). */
export async function loadCodec(name: FecCodecName): Promise<FecCodec> {
  if (name === 'rs') return rsCodec;
  if (name === 'raptorq') return raptorqCodec(await loadRaptorq());
  throw walnutError('WALNUT_INVALID_ARGUMENT', `unknown FEC codec ${describeValue(name)}`, { reason: 'fec.codec' });
}

/** The codec of a sidecar group's codec byte. */
export function codecNameOf(id: number): FecCodecName | null {
  return id === 1 ? 'rs' : id === 2 ? 'raptorq' : null;
}
