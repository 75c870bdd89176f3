/**
 * cli/progress.ts — a progress bar on stderr for long commands, only when stderr is a terminal
 * and --json is off (never when piped: scripts get clean output). cli-progress (16 modules) is
 * loaded only then, when a bar is drawn: piped and --json runs, the tests', never need it.
 */

export interface Progress {
  update(value: number): void;
  stop(): void;
}

const NONE: Progress = { update: () => undefined, stop: () => undefined };

export function progress(label: string, total: number, json: boolean): Progress {
  if (json || !process.stderr.isTTY || total <= 0) return NONE;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { SingleBar } = require('cli-progress') as typeof import('cli-progress');
  const bar = new SingleBar({ format: `${label} [{bar}] {percentage}% {value}/{total}`, stream: process.stderr, hideCursor: true, clearOnComplete: true });
  bar.start(total, 0);
  return {
    update: (v) => bar.update(Math.min(v, total)),
    stop: () => bar.stop(),
  };
}
