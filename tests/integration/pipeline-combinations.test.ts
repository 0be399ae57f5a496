/**
 * Every combination of the stage switches the config schema allows (tests/support/
 * stage-switches.ts: fixes × rounding × equalization × per-layer bits × BN folding), with
 * and without the per-layer analysis, runs to a result through the one pipeline loop, the
 * worker's API and the CLI: no combination may end in an error (INTERNAL or any other), and
 * each result reports the steps its config asked for. A tiny CNN with BN, ReLU6, a depthwise
 * convolution and a residual join, so every step has something to work on.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import 'fake-indexeddb/auto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main as benchMain } from '../../src/cli/bench.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { configField } from '../../src/lib/config/schema.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { createNodeNativeEngine } from '../../src/lib/engine/node.ts';
import { initJpegDecoder } from '../../src/lib/data/decode.ts';
import type { Engine } from '../../src/lib/engine/types.ts';
import type { ExperimentResult, RunInputs } from '../../src/lib/experiment/types.ts';
import { serializeModel } from '../../src/lib/onnx/model.ts';
import { runPipeline } from '../../src/lib/pipeline/run.ts';
import { smallCnn } from '../support/onnx-helpers.ts';
import { inProcessQuantApi } from '../support/worker-helpers.ts';
import { memoryDataset, syntheticImages, type MemoryImage } from '../support/pipeline-helpers.ts';
import { stageCombinations } from '../support/stage-switches.ts';

const CLASSES = 5;
const MODEL = serializeModel(smallCnn({ seed: 5, relu6Clip: true }));
const IMAGES = syntheticImages(12, CLASSES, 11);
/** WordNet-style ids, so the same images also load as a folder (CLI) and as picked files (worker) */
const WNIDS = Array.from({ length: CLASSES }, (_, i) => `n0000000${i}`);
const named = (im: MemoryImage, i: number) => `${WNIDS[im.label]}_${i}.JPEG`;
const CLASS_INDEX = Object.fromEntries(WNIDS.map((w, i) => [String(i), [w, `class ${i}`]]));

/** AdaRound steps kept small: the test is about the steps running together, not their accuracy */
const base = (model: string) =>
  resolveConfig({ backend: 'tensorrt', model, calib: 4, eval: 6, seed: 2, wBits: 4, ptqIters: 4 });

/** What each result must show of the steps its config asked for. */
function expectSteps(r: ExperimentResult, cfg: ExperimentConfig, analysed: boolean) {
  expect(r.images.eval).toBe(6);
  expect(!!r.fixes).toBe(cfg.biasCorrection || cfg.bnReestimate);
  expect(!!r.beforeFixes).toBe(cfg.biasCorrection || cfg.bnReestimate);
  expect(r.ptq?.method).toBe(cfg.ptq === 'none' ? undefined : cfg.ptq);
  expect(!!r.layers).toBe(analysed);
}

describe('every combination of stage switches runs to a result', () => {
  let engine: Engine;
  const combos = stageCombinations(base('test:combinations'), 'conv1');

  beforeAll(async () => {
    // onnxruntime-node: these tests check how the steps fit together, not bit-exact numbers
    engine = await createNodeNativeEngine(1);
    await initJpegDecoder();
  });

  it('enumerates the schema’s switches (rounding methods × their inputs × equalization modes …)', () => {
    // 2 folds × 4 fixes × 2 layer-bit settings × (1 + 2 methods × 2 inputs) × (1 + 3 ReLU6 modes × 2 absorb)
    expect(combos.length).toBeGreaterThanOrEqual(2 * 4 * 2 * 5 * 7);
    expect(new Set(combos.map((c) => JSON.stringify(c))).size).toBe(combos.length);
  });

  it('through the pipeline loop, with and without analysis', async () => {
    const inputs: RunInputs = {
      engine,
      modelBytes: MODEL,
      model: { id: 'test:combinations', label: 'tiny', preprocess: TORCHVISION_SPEC, classes: CLASSES },
      dataset: memoryDataset(IMAGES, CLASSES, 'combinations'),
    };
    const analyse = new Set(combos.filter((_, i) => i % 2 === 1));
    const results = await runPipeline(combos, inputs, {
      hooks: { analyzeFor: (c) => (analyse.has(c) ? { images: 2 } : undefined) },
    });
    results.forEach((r, i) => expectSteps(r, combos[i], analyse.has(combos[i])));
  });

  it('through the worker’s API (the app’s Run and analysed Run)', async () => {
    const api = inProcessQuantApi(engine, 'combinations');
    const model = await api.loadModel({ kind: 'bytes', bytes: MODEL, name: 'tiny.onnx' });
    if (!model.ok) throw new Error(model.error.message);
    const files = [
      ...IMAGES.map((im, i) => new File([new Uint8Array(im.bytes)], named(im, i))),
      new File([JSON.stringify(CLASS_INDEX)], 'imagenet_class_index.json'),
    ];
    const data = await api.loadDataset({ kind: 'files', files });
    if (!data.ok) throw new Error(data.error.message);
    const configs = combos.map((c) => ({ ...c, model: model.value.id, dataset: data.value.name }));
    for (const analyze of [false, true]) {
      // an analysed Run of the app asks for one config at a time; a plain Run for many
      const batches = analyze ? configs.filter((_, i) => i % 8 === 0).map((c) => [c]) : [configs];
      for (const batch of batches) {
        const r = await api.run(batch, 'wasm', undefined, analyze ? { analyze: { images: 2 } } : undefined);
        if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
        r.value.results.forEach((res, i) => expectSteps(res, batch[i], analyze));
      }
    }
  });

  describe('through the CLI', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'qp-combinations-'));
      writeFileSync(join(dir, 'tiny.onnx'), MODEL);
      IMAGES.forEach((im, i) => writeFileSync(join(dir, named(im, i)), im.bytes));
      writeFileSync(join(dir, 'imagenet_class_index.json'), JSON.stringify(CLASS_INDEX));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    /**
     * The CLI multiplies every listed value; the combinations are split into invocations so that
     * a field is listed only where it is used (a rounding method's inputs, equalization's modes),
     * and together they cover every combination once, each analysed.
     */
    const methods = (configField('ptq')!.type as { values: readonly string[] }).values.filter((m) => m !== 'none');
    const ROUNDING = [
      ['--ptq', 'none'],
      ['--ptq', methods.join(','), '--ptq-inputs', 'quantized-prefix,fp32'],
    ];
    const EQUALIZATION = [
      ['--cle', '0'],
      ['--cle', '1', '--cle-relu6', 'clip,relu,keep', '--cle-absorb', '0,1'],
    ];
    const LAYER_BITS = [[], ['--layer-bits', 'conv1=8']];
    const invocations = ROUNDING.flatMap((r) => EQUALIZATION.flatMap((e) => LAYER_BITS.map((l) => [...r, ...e, ...l])));

    it('every combination, analysed, in invocations that together cover them all', async () => {
      let total = 0;
      for (const switches of invocations) {
        const json = join(dir, 'out.json');
        const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
        const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
        let code: number;
        try {
          code = await benchMain([
            ...['--model', join(dir, 'tiny.onnx'), '--data', dir, '--engine', 'node', '--threads', '1'],
            ...['--calib', '4', '--eval', '6', '--seed', '2', '--w-bits', '4', '--ptq-iters', '4', '--analyze'],
            ...['--fold-bn', '0,1', '--bias-correction', '0,1', '--bn-reestimate', '0,1', ...switches],
            ...['--json', json],
          ]);
        } finally {
          err.mockRestore();
          out.mockRestore();
        }
        const errors = err.mock.calls.map((c) => String(c[0])).filter((l) => l.startsWith('error'));
        expect(errors, switches.join(' ')).toEqual([]);
        expect(code, switches.join(' ')).toBe(0);
        const records = JSON.parse(readFileSync(json, 'utf8')) as ExperimentResult[];
        for (const r of records) expectSteps(r, r.config, true);
        total += records.length;
      }
      expect(total).toBe(combos.length);
    });
  });
});
