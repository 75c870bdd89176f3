// A python3 sqlite3 writer driven line by line (sqlite-write-gap.py beside this file: "hold",
// "gap MS", "commit", each answered "ok" or "busy"), for tests of what a wait for WRITE catches
// in a gap of known length.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';

import { HELPERS } from './children';

export interface WriteGapWriter {
  /** Sends one command; resolves with the writer's answer line. */
  ask(command: string): Promise<string>;
  /** Ends its input: the writer commits what it holds and exits. */
  end(): void;
}

export function startWriteGap(file: string): WriteGapWriter {
  const writer = spawn('python3', [path.join(HELPERS, 'sqlite-write-gap.py'), file], { stdio: ['pipe', 'pipe', 'inherit'] });
  const answers = readline.createInterface({ input: writer.stdout! })[Symbol.asyncIterator]();
  return {
    ask: async (command) => {
      writer.stdin!.write(`${command}\n`);
      return String((await answers.next()).value);
    },
    end: () => void writer.stdin!.end(),
  };
}
