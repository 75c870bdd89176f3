// `walnut replica` waits in openReplica for the stream's first base image before its replica
// exists; its position file (<db>-replica) is made first. Stopped there by SIGINT or SIGTERM
// (the stream is not there yet: the user gives up on the wait) it died by the signal
// and left that position file behind (empty, for a replica that was never made; an openReplica
// that fails leaves nothing), and a first base image coming in its restore temporary too. Now
// it removes what belongs to the replica it never made, then ends by the signal.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
let nats: NatsNode | null = null;

describe.skipIf(NATS_SKIP !== null)('walnut replica interrupted before its replica exists', () => {
  beforeAll(async () => {
    nats = await startNatsServer();
  }, 60_000);
  afterAll(() => stopNats([nats]));

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    it(`${signal}: nothing left of the replica it never made, ended by the signal`, async () => {
      const sub = fs.mkdtempSync(path.join(dir, `${signal}-`));
      const db = path.join(sub, 'replica.db');
      const replica = spawn(process.execPath, [bin, 'replica', db, '--nats', nats!.url, '--stream', `absent_${signal}`], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      replica.stderr!.on('data', (d) => (stderr += d));
      const exited = new Promise<[number | null, string | null]>((resolve) => replica.once('exit', (code, sig) => resolve([code, sig])));
      try {
        await until(() => fs.existsSync(`${db}-replica`), 30_000, () => ({ stderr, files: fs.readdirSync(sub) })); // waiting for a stream that is not there
      } finally {
        replica.kill(signal);
      }
      expect(await exited, stderr).toEqual([null, signal]);
      expect(fs.readdirSync(sub)).toEqual([]);
    }, 60_000);
  }
});
