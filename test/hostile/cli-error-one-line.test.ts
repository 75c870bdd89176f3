// The CLI promises one line on stderr for a failure. A path or argument with a newline in it
// (`walnut inspect $'new\nline.db'`, an unknown command 'a\nb') put that newline into the
// message as it was: two lines, the second looking like another line of output (and a script
// reading the first line got half a path). Now control characters in the message are written
// escaped (\n, \t, \xNN): one line, exit 2, as for every failure.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);

describe('walnut failure messages with control characters from the caller', () => {
  it('stay one line', async () => {
    const notDb = path.join(dir, 'not\na\tdb');
    fs.writeFileSync(notDb, 'x'.repeat(200));
    const cases: [string[], RegExp][] = [
      [['inspect', path.join(dir, 'new\nline.db')], /WALNUT_CANTOPEN: .*new\\nline\.db/],
      [['verify', notDb], /WALNUT_CANTOPEN: .*not\\na\\tdb/],
      [['export', path.join(dir, 'x\r.db')], /WALNUT_CANTOPEN: .*x\\r\.db/],
      [['bad\ncommand'], /WALNUT_INVALID_ARGUMENT: unknown command 'bad\\ncommand'/],
      [['restore', path.join(dir, 'no\x01such.ark'), path.join(dir, 'r.db')], /WALNUT_CANTOPEN: .*no\\x01such\.ark/],
    ];
    for (const [args, message] of cases) {
      const r = await walnut(...args);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/^walnut: WALNUT_[A-Z_]+: [^\n]*\n$/);
      expect(r.stderr).toMatch(message);
    }
  });
});
