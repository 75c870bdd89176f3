#!/usr/bin/env node
// The `walnut` command: see lib/cli/index.ts and `walnut --help`.
'use strict';
require('../dist/cli/index.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
