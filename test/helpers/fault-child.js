// Child process for the fault-injection tests (the hook is armed only when the process starts
// with WALNUT_FAULT_INJECTION=1). Prints one JSON line describing what happened.
'use strict';
const fs = require('node:fs');
const { WalnutFile } = require('../../dist/index.js');
const native = require('../../dist/native.js');

const [file, scenario] = process.argv.slice(2);

function outcome(fn) {
  try {
    fn();
    return { ok: true };
  } catch (e) {
    return { ok: false, code: e.code, errno: e.errno, syscall: e.syscall, walnut: e.constructor.name };
  }
}

async function main() {
  const f = WalnutFile.openSync(file, { create: true, truncate: true });
  const page = Buffer.alloc(4096, 0xab);
  const result = { armed: native.faultInjectionArmed };
  if (scenario === 'failWrite') {
    native.TEST_setFaults({ failWrite: { nth: 2, errno: 5 } });
    result.first = outcome(() => f.writeSync(page, 0, 4096, 0));
    result.second = outcome(() => f.writevSync([page, page], 4096));
    result.third = outcome(() => f.writeSync(page, 0, 4096, 4096));
  } else if (scenario === 'shortWrite') {
    native.TEST_setFaults({ shortWrite: { nth: 1, errno: 28 } });
    result.first = outcome(() => f.writevSync([page, page], 0));
    result.size = fs.statSync(file).size;
  } else if (scenario === 'failSync') {
    native.TEST_setFaults({ failSync: { nth: 1, errno: 5 } });
    f.writeSync(page, 0, 4096, 0);
    try {
      await f.fdatasync();
      result.first = { ok: true };
    } catch (e) {
      result.first = { ok: false, code: e.code, errno: e.errno, syscall: e.syscall };
    }
    result.second = outcome(() => f.fdatasyncSync());
    native.TEST_setFaults({ failSync: { nth: 1, errno: 28 } });
    result.writevSync = outcome(() => f.writevSync([page], 0, 'data'));
  } else if (scenario === 'walAppend') {
    // a failed append leaves the window where it was; the next append overwrites that offset
    const { WalFile } = require('../../dist/wal/wal-file.js');
    f.closeSync();
    fs.rmSync(file);
    const w = WalFile.openSync(file, { create: true });
    w.writeHeaderSync({ pageSize: 1024, checkpointSeq: 0 });
    const pg = (v) => new Uint8Array(1024).fill(v);
    w.appendSync([{ pages: [{ pgno: 1, data: pg(1) }], dbSize: 1 }]);
    native.TEST_setFaults({ shortWrite: { nth: 1, errno: 28 } });
    result.failed = outcome(() => w.appendSync([{ pages: [{ pgno: 2, data: pg(2) }, { pgno: 3, data: pg(3) }], dbSize: 3 }]));
    result.mxAfterFailure = w.mxFrame;
    native.TEST_setFaults({ failSync: { nth: 1, errno: 5 } });
    result.syncFailed = outcome(() => w.appendSync([{ pages: [{ pgno: 2, data: pg(4) }], dbSize: 2 }], 'data'));
    result.mxAfterSyncFailure = w.mxFrame;
    result.next = outcome(() => w.appendSync([{ pages: [{ pgno: 2, data: pg(5) }], dbSize: 2 }]));
    result.mxFinal = w.mxFrame;
    const check = WalFile.openSync(file, { readOnly: true });
    const r = check.recoverSync();
    result.recovered = { mxFrame: r.mxFrame, dbSize: r.dbSize, pgnos: [...r.pgnos] };
    check.closeSync();
    w.closeSync();
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  } else if (scenario === 'unarmed') {
    result.set = outcome(() => native.TEST_setFaults({ failWrite: { nth: 1 } }));
    result.write = outcome(() => f.writeSync(page, 0, 4096, 0));
  }
  f.closeSync();
  process.stdout.write(JSON.stringify(result) + '\n');
}
main();
