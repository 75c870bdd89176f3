// `walnut export app.db` typed at a terminal (no -o, stdout the terminal) wrote the binary
// ARKHEXP1 stream onto the screen (16,516 bytes of it for a 4-page database, measured), its
// control bytes read by the terminal as escape sequences, and exited 0. Now, as gzip does, a
// stream is not written to a terminal unless asked for by name: exit 2, one line naming
// WALNUT_INVALID_ARGUMENT (reason terminal), nothing exported; `-o -` writes it there anyway.
// `walnut restore - app.db` at a terminal waited, silently, for the binary stream to be typed;
// it is refused the same way (a stream is never typed).
// The terminal is a real pseudo-terminal (python3's pty module).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { sqliteWritesWal, typicalWork } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');

/** Runs the command with a pseudo-terminal as its stdin, stdout and stderr: its status (-15: still waiting after 10 s) and what the terminal showed. */
const PTY_RUN = `
import json, os, pty, select, signal, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b''
deadline = time.time() + 10  # a command still waiting on the terminal then is ended (SIGTERM)
while True:
    if time.time() > deadline:
        os.kill(pid, signal.SIGTERM)
        deadline = float('inf')
    if not select.select([fd], [], [], 0.1)[0]:
        continue
    try:
        d = os.read(fd, 65536)
    except OSError:
        break
    if not d:
        break
    out += d
_, status = os.waitpid(pid, 0)
print(json.dumps({'status': os.waitstatus_to_exitcode(status), 'stream': b'ARKHEXP1' in out, 'text': out.decode('latin1')}))
`;

async function atTerminal(...args: string[]): Promise<{ status: number; stream: boolean; text: string }> {
  const r = await spawnOutput('python3', ['-c', PTY_RUN, process.execPath, bin, ...args], { timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { status: number; stream: boolean; text: string };
}

describe('walnut export and restore at a terminal', () => {
  it('export with a terminal as stdout is refused without -o (nothing written to the terminal but the one line); -o - writes the stream there anyway', async () => {
    const db = sqliteWritesWal(dir, 'app', 4096, typicalWork(4, 1)).db;
    for (const extra of [[], ['--follow']]) {
      const r = await atTerminal('export', db, ...extra);
      expect(r.stream, extra.join(' ')).toBe(false);
      expect(r.status, extra.join(' ')).toBe(2);
      expect(r.text.trim(), extra.join(' ')).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: refusing to write the export stream to a terminal[^\n]*$/);
    }
    const insisted = await atTerminal('export', db, '-o', '-');
    expect(insisted.status).toBe(0);
    expect(insisted.stream).toBe(true);
  });

  it('restore - with a terminal as stdin is refused (it waited for the stream to be typed)', async () => {
    const r = await atTerminal('restore', '-', path.join(dir, 'typed.db'));
    expect(r.status).toBe(2);
    expect(r.text.trim()).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: refusing to read the export stream from a terminal[^\n]*$/);
    expect(fs.existsSync(path.join(dir, 'typed.db'))).toBe(false);
  });
});
