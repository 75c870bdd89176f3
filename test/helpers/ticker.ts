// A better-sqlite3 process committing back to back into a database (sqlite-ticker.js, its usage
// there), as the tests of walnut/sql's lost commits start it: ready once it printed so (or exited),
// `done` once it exited, `commits` its count (printed as it ends), `exited` its end.
import { spawn } from 'node:child_process';
import * as path from 'node:path';

import { HELPERS } from './children';
import { readLines } from './child-lines';

export interface Ticker {
  /** The process has exited (its duration ran out, or the stop file appeared). */
  readonly done: boolean;
  /** Its commits, known once it has exited (0 before). */
  readonly commits: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** Starts sqlite-ticker.js on `file` (its `ext` table must exist) for `durationMs` (ended early by `stopFile`, when given); resolves once it is committing. */
export async function startTicker(file: string, durationMs: number, stopFile?: string): Promise<Ticker> {
  const args = [path.join(HELPERS, 'sqlite-ticker.js'), file, String(durationMs), ...(stopFile === undefined ? [] : [stopFile])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const state = { done: false, commits: 0 };
  const exited = readLines(child, (line) => {
    const msg = JSON.parse(line) as { ready?: boolean; commits?: number };
    if (msg.ready) markReady();
    if (msg.commits !== undefined) state.commits = msg.commits;
  });
  void exited.then(() => ((state.done = true), markReady()));
  await ready;
  return {
    get done() {
      return state.done;
    },
    get commits() {
      return state.commits;
    },
    exited,
  };
}
