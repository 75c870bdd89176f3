// WalnutFile.writev / writevSync take an array of buffers, and the addon read it element by
// element, looking up each buffer's bytes as it went. An element that is an accessor runs the
// caller's code in the middle of that: one that shrank the resizable ArrayBuffer of an element
// already looked up made the copy (writev) SIGSEGV the process and pwritev (writevSync) fail
// EFAULT; one that transferred it made both read freed memory (ASan: heap-use-after-free in
// NativeFile::Writev) and write it to the file; one that threw reached the caller as its raw
// error. Now every element is read before any buffer's bytes are looked up, so the write takes
// the buffers as they are once the array has been read (a shrunk or transferred one is empty
// then), and a throwing accessor is WALNUT_INVALID_ARGUMENT, reason 'buffers', with the original
// as cause, the file untouched. Run in a child: the failure was the process dying.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { HELPERS, runJsonChild } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const CHILD = path.join(HELPERS, 'writev-accessor-child.js');

interface Outcome {
  value?: number;
  error?: { name: string; code?: string; reason?: string; causeIsThrown: boolean };
  size: number;
  distinct: number[];
}

describe('WalnutFile.writev with an element accessor that spoils an earlier buffer', () => {
  for (const mode of ['shrink', 'shrinkSync', 'transfer', 'transferSync']) {
    it(`${mode}: writes the buffers as the array left them (the earlier one empty), no crash, no freed memory`, async () => {
      const out = await runJsonChild<Outcome>(CHILD, [path.join(dir, mode), mode]);
      expect(out.error).toBeUndefined();
      expect(out.value).toBe(4);
      expect(out.size).toBe(4);
      expect(out.distinct).toEqual([0xbb]);
    });
  }

  for (const mode of ['throw', 'throwSync']) {
    it(`${mode}: WALNUT_INVALID_ARGUMENT (reason buffers, the original as cause), nothing written`, async () => {
      const out = await runJsonChild<Outcome>(CHILD, [path.join(dir, mode), mode]);
      expect(out.error).toEqual({ name: 'WalnutError', code: 'WALNUT_INVALID_ARGUMENT', reason: 'buffers', causeIsThrown: true });
      expect(out.size).toBe(0);
    });
  }
});
