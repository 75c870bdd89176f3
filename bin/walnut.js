#!/usr/bin/env node
// The `walnut` command. Until the command set of DESIGN.md section 6b lands (inspect, verify,
// recover, checkpoint, export, restore, bench), it answers --version and `info` only, and says
// so for anything else (exit 2).
'use strict';
const pkg = require('../package.json');
const args = process.argv.slice(2);

if (args[0] === '--version' || args[0] === '-V') {
  console.log(pkg.version);
} else if (args[0] === 'info') {
  const { checksum } = require('../dist/index.js');
  const info = { version: pkg.version, node: process.version, checksumPaths: checksum.checksumPaths() };
  console.log(args.includes('--json') ? JSON.stringify(info) : JSON.stringify(info, null, 2));
} else {
  console.error(`walnut ${pkg.version}: usage: walnut --version | walnut info [--json]`);
  if (args.length > 0) console.error(`walnut: '${args[0]}' is not available in this version`);
  process.exit(2);
}
