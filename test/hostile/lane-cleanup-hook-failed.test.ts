// A commit-lane member whose environment cleanup hook could not be added
// (napi_add_async_cleanup_hook failed; native/commit_lane_binding.cc) joined the lane anyway:
// abandoned (a worker ending without close()), nothing would ever leave the lane for it or close
// its libuv handles, which kept it (and its worker's loop) alive. Now the member is refused
// before it opens a handle: open() fails with WALNUT_IO, leaves no lane, no -wal/-shm, and
// the next open works.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { HELPERS, runJsonChild } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('a lane member whose cleanup hook cannot be added', () => {
  it('is refused: open() fails with WALNUT_IO, nothing is left, the next open commits', async () => {
    const out = await runJsonChild<{ first: { code?: string; message?: string; opened?: boolean }; lanes: number; left: string[]; lanesAfter: number }>(
      path.join(HELPERS, 'lane-hook-fault-child.js'), [path.join(dir, 'a.db')], { WALNUT_FAULT_INJECTION: '1' });
    expect(out.first).toEqual({ code: 'WALNUT_IO', message: 'WALNUT_IO: the commit lane could not attach to this thread\'s event loop' });
    expect(out.lanes).toBe(0);
    expect(out.left).toEqual([]);
    expect(out.lanesAfter).toBe(0);
  });
});
