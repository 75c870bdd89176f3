// The published package: `npm pack` gives a tarball that installs into an empty project
// (building the addon from source, since prebuilds/ is not in the repository), loads through
// both require() and import, and whose type declarations resolve for TypeScript users.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

import { tmpDir } from '../helpers/tmp';

const root = path.resolve(__dirname, '..', '..');
// Asynchronous on purpose: the install compiles the addon for a minute or more, and a worker
// blocked that long in execFileSync misses vitest's RPC deadline ("Timeout calling onTaskUpdate").
const run = async (file: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<string> =>
  (await promisify(execFile)(file, args, { cwd, encoding: 'utf8', env, maxBuffer: 64 << 20 })).stdout;
// JOBS: node-gyp compiles the addon's sources in parallel (one at a time by default: most of
// this test's time), as many as the machine has cores. CXXFLAGS/CFLAGS -O0: the environment's
// flags come after binding.gyp's on gyp's compile line, so the install compiles the same sources
// with the same flags but unoptimized (about half the CPU of -O3): what is tested is that the
// package builds and loads, not how fast its build runs.
const npm = (args: string[], cwd: string) =>
  run('npm', args, cwd, { ...process.env, npm_config_loglevel: 'error', JOBS: process.env.JOBS ?? 'max', CXXFLAGS: '-O0', CFLAGS: '-O0' });

describe('npm pack + install', () => {
  it('installs into an empty directory and loads via require, import and types', async () => {
    const work = tmpDir('walnut-pack-');
    // --ignore-scripts: `prepare` would rebuild dist/ under the feet of the suites running in parallel
    const packed = JSON.parse(await npm(['pack', '--json', '--ignore-scripts', '--pack-destination', work], root))[0];
    const files: string[] = packed.files.map((f: { path: string }) => f.path);
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.mjs');
    expect(files).toContain('dist/checksum.d.ts');
    expect(files).toContain('binding.gyp');
    expect(files).toContain('native/file.cc');
    expect(files.some((f) => f.startsWith('test/') || f.startsWith('build/') || f.startsWith('node_modules/'))).toBe(false);

    const app = path.join(work, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    await npm(['install', '--no-audit', '--no-fund', '--prefer-offline', path.join(work, packed.filename)], app);

    const cjs = await run(process.execPath, ['-e', `
      const w = require('walnut'); const c = require('walnut/checksum');
      const f = w.WalnutFile.openSync('x.bin', { create: true }); f.writeSync(Buffer.from('hi'), 0, 2, 0); f.closeSync();
      let code; try { w.WalnutFile.openSync('/nonexistent/x'); } catch (e) { code = e instanceof w.WalnutError && e.code; }
      console.log(JSON.stringify({ crc: c.crc32c(Buffer.from('123456789')), code }));`], app);
    expect(JSON.parse(cjs)).toEqual({ crc: 0xe3069283, code: 'WALNUT_CANTOPEN' });

    fs.writeFileSync(path.join(app, 'esm.mjs'), `
      import { WalnutFile, WalnutError } from 'walnut';
      import { xxh3_64 } from 'walnut/checksum';
      import * as cjs from 'walnut';
      let same; try { WalnutFile.openSync('/nonexistent/x'); } catch (e) { same = e instanceof WalnutError && e instanceof cjs.default.WalnutError; }
      console.log(JSON.stringify({ h: xxh3_64(new Uint8Array(0)).toString(16), same }));`);
    const esm = await run(process.execPath, ['esm.mjs'], app);
    expect(JSON.parse(esm)).toEqual({ h: '2d06800538d394c2', same: true });

    fs.writeFileSync(path.join(app, 'use.mts'), `
      import { WalnutFile, WalnutError, type WalnutErrorCode } from 'walnut';
      import { crc32c, Xxh3Stream } from 'walnut/checksum';
      const code: WalnutErrorCode = 'WALNUT_BUSY';
      const f: Promise<WalnutFile> = WalnutFile.open('x', { create: true });
      const n: number = crc32c(new Uint8Array(4), 0);
      const d: bigint = new Xxh3Stream(1n).update(new Uint8Array(3)).digest128();
      import { open, type Store, type CommitResult } from 'walnut';
      const s: Promise<Store> = open('x.db', { synchronous: 'full', groupCommit: { maxBatchBytes: 1 << 20 } });
      async function use(store: Store): Promise<CommitResult> { return store.commit([{ pgno: 1, data: new Uint8Array(4096) }]); }
      export { code, f, n, d, WalnutError, s, use };`);
    fs.writeFileSync(path.join(app, 'use.cts'), `
      import walnut = require('walnut');
      const ok: boolean = walnut.isWalnutError(new Error('x'), 'WALNUT_IO');
      export = ok;`);
    fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { module: 'node16', moduleResolution: 'node16', strict: true, noEmit: true, types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')] },
      files: ['use.mts', 'use.cts'],
    }));
    try {
      await run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], app);
    } catch (e) {
      throw new Error(`type check of the installed package failed:\n${(e as { stdout?: string }).stdout}`);
    }
  }, 1_800_000); // the install compiles the addon: 85 s of CPU (-O3, one job), 13 min of wall at load 19 on 2 cores
});
