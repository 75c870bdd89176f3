// The native commit lane delivers a member's outcomes from its own libuv wake-up
// (native/commit_lane_binding.cc OnAsync). An exception thrown in that turn (a process.nextTick
// callback queued by a commit's handler runs as the callback's scope closes) was cleared there:
// it vanished, where Node makes it uncaught after any callback of its own. Now it is uncaught
// (napi_fatal_exception): 'uncaughtException' sees it.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { HELPERS, runNode } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('an exception thrown in the lane callback\'s turn', () => {
  it('is uncaught, as in any Node callback, not dropped', async () => {
    const r = await runNode(path.join(HELPERS, 'lane-throw-child.js'), [path.join(dir, 'a.db')]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('uncaught boom from a commit handler member=2\n'); // member 2: the commit went through the lane
    expect(r.code).toBe(0);
  });
});
