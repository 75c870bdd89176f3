// openReplica and restoreFromNats that give up on an unreachable NATS server: their WALNUT_IO
// (reason 'nats') nested the connection code's own WalnutError whole in its message, two codes
// in one line ("WALNUT_IO: cannot reach NATS at X: WALNUT_CLOSED: no NATS server answered:
// connection refused"), which the CLI printed as is. Now one code, the client's reason after it.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openReplica } from '../../lib/replicate/replica';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const servers = 'nats://127.0.0.1:1'; // nobody listens on port 1

describe('a NATS server that never answers', () => {
  it('openReplica past connectTimeoutMs and restoreFromNats: WALNUT_IO reason nats, one code in the message', async () => {
    const replica = await expectRejectsWalnut(openReplica(path.join(dir, 'replica.db'), { servers, stream: 's', connectTimeoutMs: 100 }), 'WALNUT_IO', { reason: 'nats' });
    const restored = await expectRejectsWalnut(restoreFromNats(path.join(dir, 'restored.db'), { servers, stream: 's' }), 'WALNUT_IO', { reason: 'nats' });
    for (const e of [replica, restored]) {
      expect(e.message.match(/WALNUT_[A-Z_]+/g)).toEqual(['WALNUT_IO']);
      expect(e.message).toMatch(/^WALNUT_IO: cannot reach NATS at nats:\/\/127\.0\.0\.1:1: \S/);
    }
  }, 10_000);
});
