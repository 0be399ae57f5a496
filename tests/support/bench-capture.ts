/**
 * The bench CLI in-process for integration tests: `main(argv)` with stdout and stderr
 * captured, and a folder holding the tiny CNN and its synthetic images named by WordNet id
 * (with a class index), as `--model` and `--data` read them.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vi } from 'vitest';
import { main as benchMain } from '../../src/cli/bench.ts';
import { syntheticImages } from './pipeline-helpers.ts';

/** Runs `npm run bench -- …argv` in this process; what it printed comes back. */
export async function captureBench(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    const code = await benchMain(argv);
    return {
      code,
      stdout: out.mock.calls.map((c) => String(c[0])).join(''),
      stderr: err.mock.calls.map((c) => String(c[0])).join(''),
    };
  } finally {
    err.mockRestore();
    out.mockRestore();
  }
}

/** A temporary folder with `tiny.onnx` and `images` synthetic images of `classes` classes. */
export function benchFolder(prefix: string, model: Uint8Array, images: number, classes: number, seed: number): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const wnids = Array.from({ length: classes }, (_, i) => `n0000000${i}`);
  writeFileSync(join(dir, 'tiny.onnx'), model);
  syntheticImages(images, classes, seed).forEach((im, i) =>
    writeFileSync(join(dir, `${wnids[im.label]}_${i}.JPEG`), im.bytes),
  );
  writeFileSync(
    join(dir, 'imagenet_class_index.json'),
    JSON.stringify(Object.fromEntries(wnids.map((w, i) => [String(i), [w, `class ${i}`]]))),
  );
  return dir;
}
