/**
 * The worker's instant methods (workers/instant.ts) in Node, on the tiny fixture model: the
 * background estimate decodes the images no Run has cached with the decoder it is given (the
 * page's decode pool; in the worker itself the bundled JPEG decoder is never set up, and an
 * estimate that decoded there failed before any Run), and prepareEstimate only does work
 * once statistics are in memory.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { instantMethods } from '../../workers/instant.ts';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { decodeImage, initJpegDecoder } from '../../src/lib/data/decode.ts';
import { preprocessToCrop } from '../../src/lib/data/preprocess.ts';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import type { Cropper } from '../../src/lib/data/crops.ts';
import { memoryDataset, syntheticImages } from '../support/pipeline-helpers.ts';

const MODEL = new Uint8Array(readFileSync(join(import.meta.dirname, '../fixtures/bad-inputs/valid-tiny.onnx')));
const spec = { id: 'test:instant', label: 'tiny', preprocess: TORCHVISION_SPEC, classes: 10 };

describe('worker instant methods', () => {
  it('decodes what the estimate needs with the given decoder, and prepares a change once statistics are in memory', async () => {
    await initJpegDecoder();
    const cropped: string[] = [];
    const cropper: Cropper = {
      concurrency: 2,
      crop: async (bytes, id, s) => (cropped.push(id), preprocessToCrop(decodeImage(bytes, id), s)),
    };
    const crops = new Map<string, Uint8Array>();
    const engine = await createNodeWasmEngine(1);
    const m = instantMethods({
      model: () => ({ sha256: 'tiny', bytes: MODEL, spec }),
      dataset: () => memoryDataset(syntheticImages(16, 10, 7), 10, 'instant'),
      createEngine: async () => ({ engine }),
      cropStore: () => ({ get: async (k) => crops.get(k), put: async (k, c) => void crops.set(k, c) }),
      cropper: () => cropper,
    });
    const cfg = (wBits: number) =>
      resolveConfig({ backend: 'tensorrt', model: spec.id, calib: 4, eval: 10, seed: 1, wBits });
    expect(await m.prepareEstimate(cfg(4), { images: 6 })).toEqual({ ok: true, value: false });
    const first = await m.estimate(cfg(4), 'wasm', { images: 6 });
    expect(first.ok).toBe(true);
    // 4 calibration + 6 evaluation images, each decoded once by the given decoder
    expect(cropped.length).toBe(10);
    expect(new Set(cropped).size).toBe(10);
    expect(await m.prepareEstimate(cfg(3), { images: 6 })).toEqual({ ok: true, value: true });
    const next = await m.estimate(cfg(3), 'wasm', { images: 6 });
    expect(next.ok && next.value.statsCached).toBe(true);
    expect(cropped.length).toBe(10); // nothing decoded again
  });
});
