#!/usr/bin/env node
// Compiles lib/ to dist/ (CommonJS + .d.ts) and writes the ESM entry points.
//
// There is one implementation, in CommonJS; each ESM entry (.mjs) re-exports it. A dual build
// would load two copies of the module graph, and `instanceof WalnutError` would then fail for
// errors created by the other copy (the dual-package hazard).
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');
fs.rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', root], { stdio: 'inherit' });

// Entry points and their value exports, read from the sources with the compiler API (loading
// dist/ would load the addon, which need not be built yet).
const ts = require('typescript');
const entries = ['index', 'checksum', 'sql'];
const program = ts.createProgram(entries.map((e) => path.join(root, 'lib', `${e}.ts`)), { strict: true });
const checker = program.getTypeChecker();
function valueExports(entry) {
  const source = program.getSourceFile(path.join(root, 'lib', `${entry}.ts`));
  const symbol = checker.getSymbolAtLocation(source);
  return checker
    .getExportsOfModule(symbol)
    .filter((s) => {
      const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
      return (target.flags & ts.SymbolFlags.Value) !== 0;
    })
    .map((s) => s.getName());
}
for (const entry of entries) {
  const names = valueExports(entry);
  const mjs =
    `// ESM entry: re-exports the CommonJS build (one copy of the module graph).\n` +
    `import cjs from './${entry}.js';\n` +
    `export const { ${names.join(', ')} } = cjs;\n` +
    `export default cjs;\n`;
  fs.writeFileSync(path.join(dist, `${entry}.mjs`), mjs);
  fs.writeFileSync(path.join(dist, `${entry}.d.mts`), `export * from './${entry}.js';\n`);
}
