// A walnut/sql connection on a worker_thread (workerData: db, rows): inserts `rows` rows
// ('worker', 1..rows) into t, posts 'ready', closes the database on the message 'close', then
// posts 'closed' (or 'error CODE message').
const { parentPort, workerData } = require('node:worker_threads');
const { openDatabase } = require('../../dist/sql.js');

(async () => {
  const d = await openDatabase(workerData.db);
  await d.exec(`WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < ${workerData.rows}) INSERT INTO t(src, i) SELECT 'worker', v FROM s`);
  parentPort.postMessage('ready');
  await new Promise((resolve) => parentPort.once('message', resolve));
  await d.close();
  parentPort.postMessage('closed');
})().catch((e) => parentPort.postMessage(`error ${e.code} ${e.message}`));
