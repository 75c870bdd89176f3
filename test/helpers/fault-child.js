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
  } else if (scenario === 'unarmed') {
    result.set = outcome(() => native.TEST_setFaults({ failWrite: { nth: 1 } }));
    result.write = outcome(() => f.writeSync(page, 0, 4096, 0));
  }
  f.closeSync();
  process.stdout.write(JSON.stringify(result) + '\n');
}
main();
