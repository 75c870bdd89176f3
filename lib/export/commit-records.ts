/**
 * export/commit-records.ts — a run of WAL frames as FRAMES + COMMIT_META records (records.ts):
 * the reference encoder. native/commit_records.h writes the same bytes, framed (framing.ts), for
 * the exporter; this one is what test/unit/commit-records (and, with page deltas on top,
 * test/unit/replication-framing) compares the native bytes with.
 *
 * Splitting rule (both encoders): a FRAMES record ends after a commit frame (commit size, header
 * bytes 4..7, nonzero), after framesPerRecord frames, or at the run's last frame; a commit
 * frame's FRAMES record is followed by its COMMIT_META (sequence lastSeq + 1, ..., the run's
 * time, the xxh3-128 of the transaction's frame bytes, all its pieces in order). A transaction
 * the run ends inside goes on in the next run of the same encoder (its hash so far is kept).
 */
import { Xxh3Stream, xxh3_128Into } from '../checksum';
import { FRAME_HEADER_SIZE } from '../format/frame-header';
import { MAX_RECORD } from './framing';
import { encodeCommitMetaRecord, encodeFramesRecord, type PayloadMemory } from './records';

/** A frame's records beyond its bytes, at most, framing included: FRAMES' kind (1) and a COMMIT_META (33), 8 each framed. */
export const RECORD_BOUND_PER_FRAME = 8 + 1 + 8 + 33;

/** The most frames one FRAMES record holds for `pageSize` (its payload within MAX_RECORD). */
export const framesPerRecordOf = (pageSize: number): number => Math.floor((MAX_RECORD - 1) / (FRAME_HEADER_SIZE + pageSize));

/** The bytes a run of `frames` frames may take as framed records. */
export const commitRecordsBound = (frames: number, pageSize: number): number => frames * (FRAME_HEADER_SIZE + pageSize + RECORD_BOUND_PER_FRAME);

/** The canonical 16 bytes of a 128-bit digest: high u64 then low u64, big-endian. */
export function digestBytesInto(v: bigint, out: Uint8Array): Uint8Array {
  const dv = new DataView(out.buffer, out.byteOffset, 16);
  dv.setBigUint64(0, v >> 64n);
  dv.setBigUint64(8, v & 0xffffffffffffffffn);
  return out;
}

export interface CommitRun {
  /** The records' payloads, in order (in `memory` when given). */
  payloads: Uint8Array[];
  commits: number;
}

/** One export's reference encoder (see the header). */
export class CommitRecordEncoder {
  #hash: Xxh3Stream | null = null;
  readonly #digest = new Uint8Array(16);

  /** A transaction has frames encoded but not yet its commit frame. */
  get inTransaction(): boolean {
    return this.#hash !== null;
  }

  /** `frames` (whole frames of `pageSize`) as payloads; COMMIT_META numbered from lastSeq + 1, stamped `timeMs`. */
  encode(frames: Buffer, pageSize: number, framesPerRecord: number, lastSeq: bigint, timeMs: bigint, memory?: PayloadMemory): CommitRun {
    const frameSize = FRAME_HEADER_SIZE + pageSize;
    const count = frames.length / frameSize;
    const payloads: Uint8Array[] = [];
    let seq = lastSeq;
    let commits = 0;
    for (let i = 0, start = 0; i < count; i++) {
      const commit = frames.readUInt32BE(i * frameSize + 4) !== 0;
      if (!commit && i + 1 - start < framesPerRecord && i + 1 < count) continue;
      const piece = frames.subarray(start * frameSize, (i + 1) * frameSize);
      start = i + 1;
      payloads.push(encodeFramesRecord([piece], memory));
      if (!commit) {
        (this.#hash ??= new Xxh3Stream()).update(piece);
        continue;
      }
      if (this.#hash === null) xxh3_128Into(piece, this.#digest);
      else digestBytesInto(this.#hash.update(piece).digest128(), this.#digest);
      this.#hash = null;
      payloads.push(encodeCommitMetaRecord(++seq, timeMs, this.#digest, memory));
      commits++;
    }
    return { payloads, commits };
  }
}
