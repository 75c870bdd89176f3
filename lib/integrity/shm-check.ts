/**
 * integrity/shm-check.ts — the -shm's wal-index against the WAL it indexes (level 1).
 *
 * Layout (reference/sqlite-wal.md, native/shm.h): 32 KiB segments; segment 0 holds frames
 * 1..4062 after the 136-byte header, segment s >= 1 holds the next 4096 frames each. A segment
 * is a page-number array (u32, host byte order, one per frame) and a hash table of 8192 u16
 * slots at offset 16384: slot (pgno * 383) & 8191, linear probing, each value the frame's
 * 1-based index within its segment, 0 = empty.
 *
 * Checked for every frame 1..mxFrame of a valid header of the WAL's generation (same salts):
 * the page-number entry equals the WAL frame's page number, and the frame is reachable in the
 * hash table from its page's slot (else SQLite's readers would miss it and read an older page).
 * Meaningful on a quiescent database: a writer appending while this reads may be reported.
 */
import { decodeShmHeaderCopies, SHM_HASH_OFFSET, SHM_HASH_SLOTS, SHM_HEADER_SIZE, SHM_INDEX_HEADER_BYTES, SHM_SEGMENT_BYTES, shmFramesBefore, shmSegmentOf } from '../format/shm-header';
import { sameSalts } from '../format/wal-header';
import type { Finding } from './btree-check';

const MAX_FINDINGS = 20;
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function checkShmIndex(shm: Uint8Array, walPgnos: Uint32Array, walFrames: number, walSalts: [number, number]): Finding[] {
  const found: Finding[] = [];
  if (shm.length < SHM_INDEX_HEADER_BYTES) return found;
  const h = decodeShmHeaderCopies(shm.subarray(0, 2 * SHM_HEADER_SIZE));
  if (h === null || !sameSalts(h.salts, walSalts)) return found; // stale: the next opener recovers
  const mx = Math.min(h.mxFrame, walFrames);
  const dv = new DataView(shm.buffer, shm.byteOffset, shm.length);
  for (let f = 1; f <= mx && found.length < MAX_FINDINGS; f++) {
    const seg = shmSegmentOf(f);
    const iZero = shmFramesBefore(seg);
    const base = seg * SHM_SEGMENT_BYTES;
    if (base + SHM_SEGMENT_BYTES > shm.length) {
      found.push({ level: 1, kind: 'shm-index', frame: f, message: `the -shm ends before the segment of frame ${f} (mxFrame ${h.mxFrame})` });
      break;
    }
    const idx = f - iZero; // 1-based within the segment
    const pgno = dv.getUint32(base + (seg === 0 ? SHM_INDEX_HEADER_BYTES : 0) + 4 * (idx - 1), HOST_LE);
    const want = walPgnos[f - 1]!;
    if (pgno !== want) {
      found.push({ level: 1, kind: 'shm-index', frame: f, pgno: want, message: `the -shm says frame ${f} holds page ${pgno}; the WAL says page ${want}` });
      continue;
    }
    let slot = (want * 383) & (SHM_HASH_SLOTS - 1);
    let reached = false;
    for (let n = 0; n < SHM_HASH_SLOTS; n++) {
      const v = dv.getUint16(base + SHM_HASH_OFFSET + 2 * slot, HOST_LE);
      if (v === 0) break;
      if (v === idx) {
        reached = true;
        break;
      }
      slot = (slot + 1) & (SHM_HASH_SLOTS - 1);
    }
    if (!reached) found.push({ level: 1, kind: 'shm-index', frame: f, pgno: want, message: `frame ${f} (page ${want}) cannot be found through the -shm hash table: readers would miss it` });
  }
  return found;
}
