// A vitest setup file: run before each test file, in the fork that runs it. The forks run file
// after file (isolate: false, vitest.config.mjs) and load a helper module once, so a hook a
// helper registers at its load runs after the first file only. What each file leaves behind is
// removed here, after that file: its temporary directories (helpers/tmp.ts) and its small file
// systems (helpers/small-fs.ts: tmpfs and loop-mounted ext4).
import { afterAll } from 'vitest';

import { removeSmallFileSystems } from './helpers/small-fs';
import { removeTmpDirs } from './helpers/tmp';

afterAll(() => {
  removeSmallFileSystems();
  removeTmpDirs();
});
