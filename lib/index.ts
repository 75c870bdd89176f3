/**
 * index.ts — walnut's public API. Re-exports only; see DESIGN.md section 2.
 */
export { WalnutError, ErrorCodes, isWalnutError } from './errors';
export type { WalnutErrorCode, WalnutErrorDetails, FramingReason } from './errors';
export { WalnutFile } from './io/file';
export type { OpenFileOptions, Durability, LockMode, LockHolder } from './io/file';
export * as checksum from './checksum';
