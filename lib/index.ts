/**
 * index.ts — walnut's public API. Re-exports only; see DESIGN.md section 2.
 */
export { WalnutError, ErrorCodes, isWalnutError } from './errors';
export type { WalnutErrorCode, WalnutErrorDetails, FramingReason } from './errors';
export { WalnutFile } from './io/file';
export type { OpenFileOptions, Durability, LockMode, LockHolder } from './io/file';
export * as checksum from './checksum';
export { Store } from './commit/store';
export { open } from './open';
export type { StoreMetrics, FecMetrics, CommitOptions } from './commit/store';
export type { WalMetrics, WalHolders } from './commit/auto-checkpoint';
export type { OpenOptions, GroupCommitOptions, Synchronous, FecOptions } from './commit/options';
export type { CommitResult } from './commit/group-committer';
export type { PageWrite } from './commit/pages';
export { Transaction } from './commit/transaction';
export { Snapshot } from './wal-index/snapshot';
export type { CheckpointResult } from './checkpoint/execute';
export type { CheckpointMode } from './checkpoint/plan';
export { BufferedWalSink, StreamMagic, WalStreamReader, MAX_RECORD } from './export/framing';
export type { WalRecordSink } from './export/framing';
export { createExportStream, openExportOutput, refuseExportTarget } from './export/stream';
export type { ExportHandle, ExportOutputOptions } from './export/stream';
export type { ExportOptions, ExportStats } from './export/exporter';
export { restore } from './export/restore';
export type { RestoreOptions, RestoreResult } from './export/restore';
export type { HistogramSummary } from './telemetry/histogram';
export { inspect } from './integrity/inspect';
export type { InspectReport } from './integrity/inspect';
export { verify, verifySnapshot } from './integrity/verify';
export type { VerifyReport, VerifyIssue, VerifyOptions } from './integrity/verify';
export { rebuildWalIndex } from './wal-index/wal-index';
export type { RecordedEvent, EventName } from './telemetry/events';
export { repairWal } from './fec/repair';
export type { FecRepairReport, FecFallback, FecFallbackReason } from './fec/repair';
export type { FecCodecName } from './fec/codec';
export { recoverWithRepair } from './fec/recover';
