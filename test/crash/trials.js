// Crash trials: run the child, kill it with SIGKILL at a random moment once it commits, reopen, and check that
// every acknowledged commit is there with its exact contents, every transaction is
// all-or-nothing, and the database takes new commits. Shared by the vitest suite and `npm run test:crash -- --trials N`.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { open } = require('../../dist/index.js');
const { killAfterFirstAck, readLines } = require('../helpers/child-lines.js');

/** Runs the child, kills it `killAfterMs` after its first acknowledged commit; resolves with the last commit acknowledged per loop. */
function runChild(db, synchronous, committers, killAfterMs, fec) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'crash-child.js'), db, synchronous, String(committers), fec ? 'fec' : ''], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked = new Map();
    const kill = killAfterFirstAck(child, killAfterMs);
    const ended = readLines(child, (line) => {
      kill.line(line);
      if (line.startsWith('ack ')) {
        const [, w, k] = line.split(' ');
        acked.set(Number(w), Number(k));
      } else if (line.startsWith('error')) reject(new Error(`child: ${line}`));
    });
    void ended.then(({ code, signal, stderr }) => {
      kill.cancel();
      if (signal !== 'SIGKILL') reject(new Error(`child exited ${code} ${signal}: ${stderr}`));
      else resolve(acked);
    });
  });
}

/** One trial; returns { acked: number of acknowledged commits checked, problems: [] }. */
async function trial({ dir, index, rand }) {
  const db = path.join(dir, `crash-${index}.db`);
  const synchronous = index % 3 === 2 ? 'normal' : 'full';
  const committers = [1, 4, 16, 64][index % 4];
  // every other run of four trials keeps the FEC sidecar: a kill may cut a sidecar append short
  const fec = Math.floor(index / 4) % 2 === 1;
  const acked = await runChild(db, synchronous, committers, 20 + rand(200), fec);
  const problems = [];
  const store = await open(db, fec ? { fec: { repairSymbols: 2 } } : {});
  if (fec) {
    // a crash leaves at most a torn last batch, after the frames the sidecar protects
    const { fallbacks } = store.metrics().fec.recovery;
    for (const reason of Object.keys(fallbacks)) if (reason !== 'unprotected-tail') problems.push(`fec recovery fell back: ${reason}`);
  }
  try {
    const snap = await store.snapshot();
    for (let w = 0; w < committers; w++) {
      const stamps = [];
      for (let j = 0; j < 4; j++) {
        const page = await snap.read(10 + 4 * w + j);
        stamps.push(page.readUInt32BE(0));
        const expected = Buffer.alloc(4096, (w + j) & 0xff);
        expected.writeUInt32BE(page.readUInt32BE(0), 0);
        expected.writeUInt32BE(w, 4);
        if (page.readUInt32BE(0) !== 0 && !page.equals(expected)) problems.push(`loop ${w} page ${j}: bytes differ from the committed image`);
      }
      if (new Set(stamps).size !== 1) problems.push(`loop ${w}: torn transaction, stamps ${stamps.join(',')}`);
      const ack = acked.get(w) ?? 0;
      if (stamps[0] < ack) problems.push(`loop ${w}: acknowledged commit ${ack} lost (found ${stamps[0]})`);
      if (stamps[0] > ack + 1) problems.push(`loop ${w}: found commit ${stamps[0]}, but only ${ack} were acknowledged and one more in flight`);
    }
    snap.release();
    // and the database takes commits again: the torn tail a kill leaves is overwritten
    try {
      await store.commit([{ pgno: 9, data: Buffer.alloc(4096, 0x42) }]);
      const after = await store.snapshot();
      if (!(await after.read(9)).equals(Buffer.alloc(4096, 0x42))) problems.push('a commit after recovery did not read back');
      after.release();
    } catch (e) {
      problems.push(`a commit after recovery failed: ${e.code} ${e.message}`);
    }
  } finally {
    await store.close();
  }
  for (const suffix of ['', '-wal', '-shm', '-wal-fec']) fs.rmSync(db + suffix, { force: true });
  let ackCount = 0;
  for (const k of acked.values()) ackCount += k;
  if (ackCount === 0) problems.push('killed before any acknowledged commit: nothing was checked');
  return { acked: ackCount, problems, synchronous, committers };
}

module.exports = { trial };
