export type Rand = (n: number) => number; // integer in [0, n)
export type DamageKind = 'truncate' | 'header' | 'salt' | 'checksum' | 'pgno' | 'commitSize' | 'page' | 'zeroTail' | 'tornAppend';
export const DAMAGE_KINDS: DamageKind[];
export function seededRandom(seed: number): Rand;
export function damage(wal: Buffer, pageSize: number, kind: DamageKind, rand: Rand): { bytes: Buffer; what: string };
export function flipPageByte(walPath: string, pageSize: number, frame: number): void;
