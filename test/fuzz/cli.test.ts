// CLI inputs with fast-check: arbitrary argument lists (commands, options, paths that are
// missing, directories, garbage files) always end in exit status 0, 1 or 2, never a throw.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';

import { main } from '../../lib/cli/index';
import { memoryTmpDir } from '../helpers/tmp';

describe('walnut CLI argument fuzz', () => {
  it('a restore from a stream file that does not exist is a clean error, not an uncaught one', async () => {
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await main(['restore', ':|_!9hbN', path.join(memoryTmpDir(), 'x.db')])).toBe(2);
      expect(await main(['export', __filename, '-o', '/nonexistent-dir/x.ark'])).toBe(2);
    } finally {
      err.mockRestore();
    }
  });

  it('200 random command lines end in 0, 1 or 2', async () => {
    const dir = memoryTmpDir('walnut-cli-fuzz-');
    const garbage = path.join(dir, 'garbage.db');
    fs.writeFileSync(garbage, Buffer.alloc(5000, 0x5a));
    const paths = [path.join(dir, 'missing.db'), dir, garbage, '-', '', '\u0000x'];
    const word = fc.oneof(
      fc.constantFrom('inspect', 'verify', 'recover', 'checkpoint', 'export', 'restore', 'bench', '--json', '--help', '--level', '--mode', '--until', '--force', '-o', 'truncate', '7', 'x'),
      fc.constantFrom(...paths),
      fc.string({ maxLength: 12 }),
    );
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    // bare words are relative paths: run in the scratch directory, and check that no command
    // that works on an existing database created one
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(word, { maxLength: 5 }), async (argv) => {
          if (argv[0] === 'bench' || (argv.includes('bench') && !argv.includes('--help'))) return; // benchmarks take seconds
          if (argv[0] === 'export' && argv.includes('--follow')) return;
          const code = await main(argv);
          expect([0, 1, 2]).toContain(code);
        }),
        { numRuns: 200, seed: Number(process.env['WALNUT_FUZZ_SEED'] ?? 20261122) }, // fixed in npm test; vary WALNUT_FUZZ_SEED to explore
      );
      expect(fs.readdirSync(dir)).toEqual(['garbage.db']);
    } finally {
      process.chdir(cwd);
      out.mockRestore();
      err.mockRestore();
    }
  });
});
