#!/usr/bin/env node
// The `walnut` command: see lib/cli/index.ts and `walnut --help`.
'use strict';
const cli = require('../dist/cli/index.js');
cli.main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // a write to an output stuck for good (an export stopped by a signal): not waited for
  if (cli.outputAbandoned()) process.exit(code);
});
