// A follow export to a Writable owned by a caller that listens for no 'error' of its own (it
// expects the failure from handle.done): an 'error' the stream emitted while the export was
// not inside one of its writes (a peer's ECONNRESET between two flushes) had no listener: the
// process died of an uncaught exception. A real process (an uncaught exception ends the child,
// not vitest).
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { HELPERS, runNode } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe("follow export to a Writable that emits 'error' outside the export's own writes", () => {
  it('destroyed with ECONNRESET between two flushes: handle.done rejects WALNUT_IO; no uncaught exception, the store closes, the export\'s listener leaves the stream', async () => {
    const { code, stdout, stderr } = await runNode(path.join(HELPERS, 'export-sink-error-child.js'), [dir]);
    expect({ code, stdout, stderr: stderr.split('\n').slice(0, 6).join('\n') }).toEqual({ code: 0, stdout: 'done {"name":"WalnutError","code":"WALNUT_IO","errorListeners":0}\n', stderr: '' });
  });
});
