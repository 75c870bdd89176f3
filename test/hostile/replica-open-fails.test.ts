// openReplica whose servers do not answer (or that fails otherwise before its database exists)
// left its position file `<path>-replica` behind: a file for a replica that was never made, which
// a later open of that path as a plain database does not expect. Now a replica never created
// leaves nothing; a later openReplica of the path starts afresh the same way.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openReplica } from '../../lib/index';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('an openReplica that fails before its database exists', () => {
  it('leaves no position file (servers unreachable: WALNUT_IO reason nats), twice over', async () => {
    const file = path.join(dir, 'replica.db');
    for (let i = 0; i < 2; i++) {
      await expectRejectsWalnut(openReplica(file, { servers: 'nats://127.0.0.1:1', stream: 'app', connectTimeoutMs: 200 }), 'WALNUT_IO', { reason: 'nats' });
      expect(fs.readdirSync(dir)).toEqual([]);
    }
  });
});
