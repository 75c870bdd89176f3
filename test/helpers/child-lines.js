// Lines from a child process's stdout, and its end: shared by the SIGKILL trials (test/crash/
// trials.js, test/interop/workers.test.ts), which read a child's "ready" / "ack ..." lines and
// must count every acknowledgement it wrote before it died; and the trials' kill moment.
//
// It resolves on 'close', not 'exit': libuv reaps every exited child on one SIGCHLD, so 'exit'
// can come before the last 'data' event of the child's stdout (see children.ts runNode), and an
// acknowledgement still in the pipe would go uncounted: the trial's check weaker than it says.
'use strict';

/**
 * Calls onLine(line) for each complete line the child writes to stdout; resolves with
 * { code, signal, stderr } once the child has exited and its output has been read to the end.
 */
function readLines(child, onLine) {
  let buffer = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    buffer += d;
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      onLine(line);
    }
  });
  if (child.stderr) child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
}

/**
 * A SIGKILL trial's kill: `delayMs` after the child's first acknowledged commit (its first line
 * starting "ack "), not after its "ready". From "ready" to a first commit a loaded machine can
 * take longer than the whole random delay (slow fsyncs, worker threads starting): the trials
 * then killed children that had acknowledged few commits or none, and checked little (30 trials
 * acknowledged 74 commits at load 15). A child that acknowledges nothing within `firstAckMs` is
 * killed then (the trial finds nothing acknowledged and says so). Call line(l) with each line and
 * cancel() once the child has ended.
 */
function killAfterFirstAck(child, delayMs, firstAckMs = 60_000) {
  const kill = () => child.kill('SIGKILL');
  let timer = setTimeout(kill, firstAckMs);
  let armed = false;
  return {
    line(line) {
      if (armed || !line.startsWith('ack ')) return;
      armed = true;
      clearTimeout(timer);
      timer = setTimeout(kill, delayMs);
    },
    cancel() {
      clearTimeout(timer);
    },
  };
}

module.exports = { readLines, killAfterFirstAck };
