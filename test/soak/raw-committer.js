// Soak child: 64 concurrent walnut transactions (store.begin()) on the raw pages of the soak
// database. Each slot page is a leaf of table raw holding one row whose blob begins with
// 'SOAKSLOT', the slot number and 64 u32 counters (one per committer); a transaction reads a
// random slot page, adds 1 to its committer's counter inside the blob (same length: the page
// stays a valid SQLite page) and commits, so committers conflict on shared pages
// (WALNUT_CONFLICT, retried). After each acknowledged commit it prints `a <slot> <w> <value>`;
// the orchestrator checks the values per (slot, w) never repeat or go back and that the file
// ends at the last one acknowledged (or one more, for a commit acknowledged just before a
// SIGKILL). SIGTERM: the committers finish their transaction, it prints `stats {...}` and exits.
// A transaction's failure breaks no commit chain (lib/commit/group-committer.ts), so this store
// never sees ChainBroken; should it, `brokenBy` counts the refusals per failure that broke it
// (code/reason) and the chain is mended at once. After WALNUT_BUSY a committer backs off
// exponentially (2..64 ms, halved to doubled at random): a CheckpointWaits answer means another
// connection's checkpoint holds WRITE and waits for readers, no transaction here can commit
// until it is done, and a retry within a few ms takes a read mark again that it waits for
// (README, "CheckpointWaits"). Retrying every 1-5 ms, 64 committers met 25,000-72,000 such
// failures in a 30 s soak (8-14 per commit); backing off, 1.4 per commit, as many commits.
// usage: node raw-committer.js DB PGNO[,PGNO...] [COMMITTERS]
'use strict';
const { open, isWalnutError } = require('../../dist/index.js');

const [db, pages, committersArg] = process.argv.slice(2);
const slots = pages.split(',').map(Number);
const COMMITTERS = Number(committersArg ?? 64);
const MAGIC = Buffer.from('SOAKSLOT');
const stats = { commits: 0, conflicts: 0, busy: 0, chainBroken: 0, brokenBy: {}, other: {} };
const BUSY_BACKOFF_MAX_MS = 64;
let running = true;

process.on('SIGTERM', () => {
  running = false;
});

async function committer(store, w) {
  let rnd = (w * 2654435761) >>> 0 || 1;
  let busyInARow = 0;
  while (running) {
    rnd = (Math.imul(rnd, 1103515245) + 12345) >>> 0;
    const i = rnd % slots.length;
    const pgno = slots[i];
    const tx = store.begin();
    let value;
    try {
      const page = Buffer.from(await tx.read(pgno));
      const at = page.indexOf(MAGIC);
      if (at < 0 || page.readUInt32LE(at + 8) !== i) throw new Error(`slot ${i} is not on page ${pgno}`);
      const off = at + 12 + 4 * w;
      value = page.readUInt32LE(off) + 1;
      page.writeUInt32LE(value, off);
      tx.write(pgno, page);
      await tx.commit();
    } catch (e) {
      tx.rollback();
      busyInARow = isWalnutError(e, 'WALNUT_BUSY') ? busyInARow + 1 : 0;
      if (isWalnutError(e, 'WALNUT_CONFLICT')) stats.conflicts++;
      else if (isWalnutError(e, 'WALNUT_BUSY')) stats.busy++;
      else if (isWalnutError(e, 'WALNUT_FAILED') && e.reason === 'ChainBroken') {
        stats.chainBroken++;
        const k = isWalnutError(e.cause) ? `${e.cause.code}/${e.cause.reason ?? ''}` : String(e.cause);
        stats.brokenBy[k] = (stats.brokenBy[k] ?? 0) + 1;
      } else {
        const k = isWalnutError(e) ? `${e.code}/${e.reason ?? ''}` : `raw: ${String(e && e.stack ? e.stack : e)}`;
        stats.other[k] = (stats.other[k] ?? 0) + 1;
        if (!isWalnutError(e)) process.stderr.write(`raw committer ${w}: ${k}\n`);
      }
      const broken = store.chainBrokenBy;
      if (broken !== null) store.resumeCommits(broken);
      const ms = busyInARow === 0 ? 1 + (rnd % 5) : Math.min(BUSY_BACKOFF_MAX_MS, 2 ** busyInARow) * (0.5 + (rnd % 1000) / 666);
      await new Promise((r) => setTimeout(r, ms));
      continue;
    }
    busyInARow = 0;
    stats.commits++;
    process.stdout.write(`a ${i} ${w} ${value}\n`); // synchronous on a pipe: printed = acknowledged
  }
}

(async () => {
  const store = await open(db, { busyTimeout: 5000 });
  process.stdout.write('ready\n');
  await Promise.all(Array.from({ length: COMMITTERS }, (_, w) => committer(store, w)));
  await store.close();
  process.stdout.write(`stats ${JSON.stringify(stats)}\n`);
})().catch((e) => {
  process.stderr.write(`raw committer failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(3);
});
