export interface OracleFrame {
  index: number; // 1-based
  pgno: number;
  commitSize: number;
  offset: number; // file offset of the frame header
}
export interface OracleScan {
  pageSize: number;
  bigEndian: boolean;
  salts: [number, number];
  checkpointSeq: number;
  /** every frame up to and including the last commit frame */
  frames: OracleFrame[];
  dbSize: number;
  commits: number;
  running: [number, number];
  lastValidFrame: number;
}
export function jsWalChecksum(data: Uint8Array, s0: number, s1: number, bigEndian: boolean): [number, number];
export function oracleScan(wal: Buffer): OracleScan | null;
