/**
 * io/sleep-sync.ts — blocking the calling thread for a few milliseconds, for the waits between
 * attempts that cannot yield: a lock tried again at start-up or by a tool (io/file.ts
 * lockSync), snapshotSync()'s wait for a read lock (commit/store.ts), a directory
 * removal racing the I/O thread's last file (cli/bench.ts). Atomics.wait on a cell nobody ever
 * notifies sleeps in the kernel without spinning; the cell is this module's alone.
 */
const cell = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the thread for `ms` milliseconds (0 or less: returns at once). */
export function sleepSync(ms: number): void {
  if (ms > 0) Atomics.wait(cell, 0, 0, ms);
}
