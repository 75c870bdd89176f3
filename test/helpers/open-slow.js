// Preloaded (node -r) into a `walnut` process: each store open() resolves WALNUT_TEST_SLOW_MS
// (default 1500) after the real open did, the event loop free meanwhile (as a large WAL's
// recovery or a busy lock make an open slow), and MARK is created as that wait begins, so a
// test can send a signal while the command is still opening. Only the timing is changed: the
// store and its files are the real ones.
// env: WALNUT_TEST_SLOW_MARK (path), WALNUT_TEST_SLOW_MS
'use strict';
const fs = require('node:fs');
const opening = require('../../dist/open.js');

const mark = process.env.WALNUT_TEST_SLOW_MARK;
const slowMs = Number(process.env.WALNUT_TEST_SLOW_MS ?? 1500);
const open = opening.open;
opening.open = async function (...args) {
  const store = await open.apply(this, args);
  fs.writeFileSync(mark, '');
  await new Promise((resolve) => setTimeout(resolve, slowMs));
  return store;
};
