// The child-process helpers (test/helpers/children.ts) return a child's whole output, even when
// its exit is noticed before its output was read: libuv reaps every exited child on one SIGCHLD,
// so of two children ending together while the event loop is busy, the second's 'exit' can come
// first (a sqlite3 writer's commit count read as '' made replicate.test.ts expect too few rows).
// The scene is staged (go file, sleeps, a busy output handler) so it does not rely on machine speed.
// And a child a test started ends with the test: one still running when its test timed out is
// killed before the next test (found by its command line in /proc, so Linux only).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { runNode, runPython } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('walnut-children-');

/** Blocks the event loop (the busy test process: replication, replicas, readers). */
function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

/**
 * Runs `early` and `late` (each: says it started, waits for `go`, sleeps its delay, prints, exits), plus a third
 * child that prints with `early` and whose output handler is slow: the loop's poll batch holding
 * `early`'s exit runs that handler first, `late` exits meanwhile, and the SIGCHLD handled after it
 * reaps both. Resolves with what the helpers returned for early and late.
 */
async function endTogether<T>(run: (script: string, args: string[]) => Promise<T>, ext: 'py' | 'js', round: number): Promise<[T, T]> {
  const go = path.join(dir, `go-${ext}-${round}`);
  const script = path.join(dir, `child.${ext}`);
  fs.writeFileSync(script, ext === 'py'
    ? 'import os, sys, time\nopen(sys.argv[1] + sys.argv[3], \'w\').close()\nwhile not os.path.exists(sys.argv[1]): time.sleep(0.002)\ntime.sleep(float(sys.argv[2]))\nprint(sys.argv[3], flush=True)\ntime.sleep(float(sys.argv[4]))\n'
    : "const fs = require('fs');\nconst [go, delay, text, after] = process.argv.slice(2);\nconst wait = (ms) => new Promise((r) => setTimeout(r, ms));\nfs.writeFileSync(go + text, '');\n(async () => {\n  while (!fs.existsSync(go)) await wait(2);\n  await wait(Number(delay) * 1000);\n  process.stdout.write(text + '\\n');\n  await wait(Number(after) * 1000);\n})();\n");
  const slow = spawn(ext === 'py' ? 'python3' : process.execPath, [script, go, '0.05', 'slow', '0.2'], { stdio: ['ignore', 'pipe', 'inherit'] });
  slow.stdout.on('data', () => busy(800));
  const slowEnded = new Promise((r) => slow.on('close', r));
  const early = run(script, [go, '0.05', '41', '0']);
  const late = run(script, [go, '0.5', '42', '0']);
  while (!['slow', '41', '42'].every((t) => fs.existsSync(go + t))) await new Promise((r) => setTimeout(r, 10)); // all waiting for go
  fs.writeFileSync(go, '');
  busy(400); // early and slow print (and early exits) meanwhile: one poll batch
  const out = await Promise.all([early, late]);
  await slowEnded;
  return out;
}

describe('child-process helpers', () => {
  it('runPython returns the whole output of two children ending together while the event loop is busy', async () => {
    for (let round = 0; round < 2; round++) expect(await endTogether(runPython, 'py', round)).toEqual(['41\n', '42\n']);
  });

  it('runNode returns the whole output of two children ending together while the event loop is busy', async () => {
    for (let round = 0; round < 2; round++) {
      const out = await endTogether((script, args) => runNode(script, args), 'js', round);
      expect(out.map((r) => [r.code, r.stdout])).toEqual([[0, '41\n'], [0, '42\n']]);
    }
  });

  /** Pids of processes whose command line holds `marker` (Linux: /proc). */
  function processesWith(marker: string): number[] {
    return fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
      } catch {
        return false; // exited meanwhile
      }
    }).map(Number);
  }

  const marker = `walnut-outlive-${process.pid}`;
  const hasProc = fs.existsSync('/proc/self/cmdline');
  let runningInTest: number[] = []; // (the first test fails whatever it finds, so the second checks it)

  it.runIf(hasProc).fails('a test that times out while its runNode child runs (fails: the timeout)', { timeout: 500 }, async () => {
    const script = path.join(dir, 'sleeper.js');
    fs.writeFileSync(script, 'setTimeout(() => undefined, 60_000);\n');
    void runNode(script, [marker]);
    runningInTest = processesWith(marker); // spawn() started it (the exec is done when spawn returns)
    await new Promise(() => undefined); // never settles: the test times out
  });

  it.runIf(hasProc)('... leaves no child behind: it was killed when that test ended', () => {
    expect(runningInTest).toHaveLength(1);
    expect(processesWith(marker)).toEqual([]);
  });
});
