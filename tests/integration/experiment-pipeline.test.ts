/**
 * The stages of the experiment pipeline (src/lib/experiment) on tiny models built in
 * the test, run on the wasm engine:
 * - calibration statistics merge exactly across sub-batches: batch-1 feeds, the default
 *   feeds and histogram sub-batches give the per-observer-batch min, max, count and
 *   histogram computed by hand from fetched activations;
 * - top-1 / top-5 / agreement of runConfig against hand-made logits (AccuracyCounter is
 *   the one top-k used, in FP32 and quantized evaluation alike);
 * - split handling: calibration and evaluation images disjoint, labels kept with their
 *   images through decoding (a fake classifier that reads the label from the pixels
 *   scores 100%);
 * - weight quantization done once per weight key, and the uncorrected fake-quant model
 *   evaluated once for configs that differ only in their fixes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { sampleSplits } from '../../src/lib/data/dataset.ts';
import type { PreprocessSpec } from '../../src/lib/data/types.ts';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import type { Engine, EngineSession, FloatTensor } from '../../src/lib/engine/types.ts';
import { batches } from '../../src/lib/experiment/batches.ts';
import { collectActivationStats } from '../../src/lib/experiment/calibrate.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import * as quantize from '../../src/lib/experiment/quantize.ts';
import { runConfig } from '../../src/lib/pipeline/config-run.ts';
import type { PreparedGroup } from '../../src/lib/pipeline/prepare.ts';
import { runPipeline } from '../../src/lib/pipeline/run.ts';
import * as fixes from '../../src/lib/corrections/fixes.ts';
import type { RunInputs } from '../../src/lib/experiment/types.ts';
import { addOutputs } from '../../src/lib/onnx/fake-quant.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { findQuantPoints, ALL_PLACEMENT } from '../../src/lib/onnx/placement.ts';
import { serializeModel } from '../../src/lib/onnx/model.ts';
import { accumulateCounts } from '../../src/lib/quant/histogram.ts';
import { memoryDataset, spyEngine, syntheticImages, type MemoryImage } from '../support/pipeline-helpers.ts';
import { mulberry32, smallCnn } from '../support/onnx-helpers.ts';

// count calls of quantizeWeights while keeping what it computes
vi.mock('../../src/lib/experiment/quantize.ts', async (orig) => {
  const m = await orig<typeof import('../../src/lib/experiment/quantize.ts')>();
  return { ...m, quantizeWeights: vi.fn(m.quantizeWeights) };
});
// see which configs the fixes are applied to (the real fixes run unless a test replaces them)
vi.mock('../../src/lib/corrections/fixes.ts', async (orig) => {
  const m = await orig<typeof import('../../src/lib/corrections/fixes.ts')>();
  return { ...m, applyFixes: vi.fn(m.applyFixes) };
});

const SPEC: PreprocessSpec = {
  resizeShorter: 8,
  crop: 8,
  interpolation: 'bilinear',
  mean: [0.5, 0.5, 0.5],
  std: [0.25, 0.25, 0.25],
  layout: 'NCHW',
};
const TINY = new Uint8Array(readFileSync(join(import.meta.dirname, '../fixtures/bad-inputs/valid-tiny.onnx'))); // 10 classes, dynamic batch

function crops(n: number, seed: number): Uint8Array[] {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, () => Uint8Array.from({ length: 8 * 8 * 3 }, () => Math.floor(rng() * 256)));
}

describe('calibration statistics merging', () => {
  const g = foldBatchNorm(smallCnn({ seed: 2 })).graph;
  const images = crops(10, 11); // observer batches of 4: [0..3], [4..7], [8, 9]
  const tensors = findQuantPoints(g, ALL_PLACEMENT).activations.map((p) => p.tensor);
  // the exact two-pass form: these checks compare every binned value (the sampled one-pass form has its own tests)
  const base = {
    batchSize: 4,
    histBatchSize: 4,
    histogram: true,
    moments: true,
    bins: 32,
    histogramMode: 'exact' as const,
  };

  it('gives per-observer-batch min, max, Σx, count and histograms equal to those of the fetched activations', async () => {
    const engine = await createNodeWasmEngine(2);
    const stats = await collectActivationStats(engine, g, tensors, images, SPEC, base);
    const session = await engine.createSession(serializeModel(addOutputs(g, tensors)));
    const all = await session.run({ input: batches(images, SPEC, 10).next().value!.tensor }, tensors);
    await session.release();
    for (const t of tensors) {
      const data = all[t].data;
      const per = data.length / 10;
      const s = stats.get(t)!;
      expect(s.batches).toHaveLength(3);
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of data) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      expect([s.histLo, s.histHi]).toEqual([lo, hi]);
      [
        [0, 4],
        [4, 8],
        [8, 10],
      ].forEach(([a, b], k) => {
        const part = data.subarray(a * per, b * per);
        const bs = s.batches[k];
        expect(bs.count).toBe(part.length);
        expect(bs.min).toBeCloseTo(Math.min(...part), 5);
        expect(bs.max).toBeCloseTo(Math.max(...part), 5);
        const sum = part.reduce((x, v) => x + v, 0);
        expect(bs.sum).toBeCloseTo(sum, 2);
        expect(bs.sumSq).toBeCloseTo(
          part.reduce((x, v) => x + v * v, 0),
          1,
        );
        const counts = new Uint32Array(32);
        accumulateCounts(part, lo, hi, counts);
        expect(Array.from(bs.hist!)).toEqual(Array.from(counts));
      });
    }
  });

  it('merges batch-1 feeds and small histogram sub-batches into the same observer batches', async () => {
    const engine = await createNodeWasmEngine(2);
    const whole = await collectActivationStats(engine, g, tensors, images, SPEC, base);
    const fed1 = await collectActivationStats(engine, g, tensors, images, SPEC, {
      ...base,
      feedBatchSize: 1,
      histBatchSize: 1,
    });
    const fed2 = await collectActivationStats(engine, g, tensors, images, SPEC, {
      ...base,
      feedBatchSize: 2,
      histBatchSize: 2,
    });
    for (const other of [fed1, fed2]) {
      for (const t of tensors) {
        const a = whole.get(t)!;
        const b = other.get(t)!;
        expect(b.batches).toHaveLength(3);
        expect([b.histLo, b.histHi]).toEqual([a.histLo, a.histHi]);
        a.batches.forEach((x, k) => {
          const y = b.batches[k];
          expect([y.min, y.max, y.count]).toEqual([x.min, x.max, x.count]);
          expect(y.sum).toBeCloseTo(x.sum, 3);
          expect(y.sumSq).toBeCloseTo(x.sumSq, 2);
          expect(Array.from(y.hist!)).toEqual(Array.from(x.hist!));
        });
      }
    }
  });
});

/** An engine whose every session returns fixed logits rows in order, whatever it is fed. */
function scriptedEngine(
  rowsFor: (session: number) => number[][],
  classes: number,
): { engine: Engine; created: number } {
  const state = { engine: undefined as unknown as Engine, created: 0 };
  state.engine = {
    kind: 'wasm',
    description: 'scripted',
    async createSession(): Promise<EngineSession> {
      const rankings = rowsFor(state.created++);
      let next = 0;
      return {
        inputNames: ['input'],
        outputNames: ['output'],
        async run(feeds: Record<string, FloatTensor>) {
          const rows = feeds.input.dims[0];
          const data = new Float32Array(rows * classes);
          for (let r = 0; r < rows; r++) rankings[next++].forEach((c, j) => (data[r * classes + c] = 10 - j));
          return { output: { data, dims: [rows, classes] } };
        },
        async release() {},
      };
    },
  } as Engine;
  return state;
}

describe('runConfig accuracy and agreement', () => {
  it('counts top-1, top-5 and agreement with FP32 from hand-made logits', async () => {
    const g = foldBatchNorm(smallCnn({ seed: 3 })).graph; // only its quantization points matter here
    const points = findQuantPoints(g, ALL_PLACEMENT);
    const calib = crops(4, 1);
    const stats = await collectActivationStats(
      await createNodeWasmEngine(1),
      g,
      points.activations.map((p) => p.tensor),
      calib,
      SPEC,
      {
        batchSize: 4,
        histBatchSize: 4,
        histogram: false,
        moments: false,
        bins: 16,
      },
    );
    const labels = [3, 0, 4, 2, 1, 1];
    // quantized rankings, best first: top-1 hits on images 0, 3; top-5-only hits on 1, 4; image 2 and 5 miss
    const q = [[3, 1], [1, 2, 0], [0, 1, 2, 3, 5], [2], [0, 2, 3, 4, 1], [0, 2, 3, 4, 5]];
    const fp32Preds = Int32Array.from([3, 0, 0, 2, 1, 4]); // agrees with q's top-1 on images 0, 2, 3
    const { engine } = scriptedEngine(() => q, 8); // 8 classes, so top-5 can miss
    const group: PreparedGroup = {
      graph: g,
      points,
      calibCrops: calib,
      evalCrops: crops(6, 2),
      evalLabels: labels,
      skipped: 0,
      fp32: { n: 6, top1Hits: 4, top5Hits: 6, preds: fp32Preds },
      stats,
      seconds: 0,
      uncorrected: new Map(),
      stageShared: new Map(),
    };
    const cfg = resolveConfig({ backend: 'tensorrt', model: 'test:tiny', calib: 4, eval: 6 });
    const inputs = {
      engine,
      modelBytes: serializeModel(g),
      model: { id: 'test:tiny', label: 'tiny', preprocess: SPEC, classes: 5 },
      dataset: memoryDataset([], 5),
    };
    for (const evalBatch of [1, 4]) {
      group.uncorrected.clear();
      const r = await runConfig(engine, group, cfg, inputs, quantize.quantizeWeights(g, points, cfg), {
        tuning: { evalBatch, calibBatch: 4, histBatch: 4 },
      });
      expect([r.quant.top1, r.quant.top5]).toEqual([2 / 6, 4 / 6]);
      expect(r.agreement).toBe(3 / 6);
      expect([r.fp32.top1, r.fp32.top5]).toEqual([4 / 6, 1]);
      expect(r.images).toEqual({ calib: 4, eval: 6, skipped: 0 });
    }
  });
});

/** Solid-colour JPEGs whose grey level encodes the label (20·label + 20). */
function labelledImages(n: number, classes: number): MemoryImage[] {
  return Array.from({ length: n }, (_, i) => {
    const label = (i * 7) % classes;
    const v = 20 * label + 20;
    const data = Buffer.alloc(16 * 16 * 4, v);
    for (let p = 3; p < data.length; p += 4) data[p] = 255;
    return {
      id: `solid-${i}.jpg`,
      label,
      bytes: new Uint8Array(jpeg.encode({ width: 16, height: 16, data }, 95).data),
    };
  });
}

/** Wraps the wasm engine; the classifier output is replaced by a one-hot of the label read from the pixels. */
function pixelOracle(base: Engine, classes: number): Engine {
  const spec = TORCHVISION_SPEC;
  return {
    ...base,
    async createSession(bytes, options) {
      const s = await base.createSession(bytes, options);
      return {
        ...s,
        inputNames: s.inputNames,
        outputNames: s.outputNames,
        release: () => s.release(),
        async run(feeds, fetches) {
          const out = await s.run(feeds, fetches);
          const name = s.outputNames[0];
          if (!out[name] || out[name].dims.length !== 2) return out;
          const x = feeds[s.inputNames[0]];
          const rows = x.dims[0];
          const plane = x.data.length / rows / 3;
          const data = new Float32Array(rows * classes);
          for (let r = 0; r < rows; r++) {
            const v = (x.data[r * 3 * plane] * spec.std[0] + spec.mean[0]) * 255;
            data[r * classes + Math.round((v - 20) / 20)] = 1;
          }
          return { ...out, [name]: { data, dims: [rows, classes] } };
        },
      };
    },
  };
}

describe('splits, reuse and sharing in runPipeline', () => {
  let wasm: Engine;
  beforeAll(async () => {
    wasm = await createNodeWasmEngine(1);
  });
  const inputsFor = (engine: Engine, images: MemoryImage[], name: string): RunInputs => ({
    engine,
    modelBytes: TINY,
    model: { id: 'test:tiny', label: 'tiny', preprocess: TORCHVISION_SPEC, classes: 10 },
    dataset: memoryDataset(images, 10, name),
  });

  it('draws disjoint, seeded calibration and evaluation splits of the asked sizes', () => {
    const s = sampleSplits(50, 12, 30, 4);
    expect(s.calib).toHaveLength(12);
    expect(s.eval).toHaveLength(30);
    expect(new Set([...s.calib, ...s.eval]).size).toBe(42);
    expect(sampleSplits(50, 12, 30, 4)).toEqual(s);
    expect(sampleSplits(50, 12, 30, 5)).not.toEqual(s);
    expect(() => sampleSplits(10, 6, 5, 0)).toThrow(/6 calibration \+ 5 evaluation images = 11/);
  });

  it('keeps every evaluation label with its image through decoding and the split', async () => {
    const images = labelledImages(24, 10);
    const cfg = resolveConfig({ backend: 'tensorrt', model: 'test:tiny', calib: 5, eval: 15, seed: 2 });
    for (const fixedBatch of [false, true]) {
      const [r] = await runPipeline([cfg], inputsFor(pixelOracle(wasm, 10), images, 'labelled'), {
        tuning: { evalBatch: 4, calibBatch: 4, histBatch: 2, fixedBatch },
      });
      expect(r.images).toEqual({ calib: 5, eval: 15, skipped: 0 });
      expect(r.fp32.top1).toBe(1);
      expect(r.quant.top1).toBe(1);
      expect(r.agreement).toBe(1);
    }
  });

  it('RunOptions.evalBatch changes only how evaluation is batched, not one number of the result', async () => {
    const { engine, sessions } = spyEngine(wasm, 'logits');
    const cfg = resolveConfig({ backend: 'tensorrt', model: 'test:tiny', calib: 4, eval: 11, seed: 5 });
    const inputs = inputsFor(engine, syntheticImages(16, 10, 3), 'eval-batch');
    const [a] = await runPipeline([cfg], inputs);
    const firstRuns = sessions.length;
    const [b] = await runPipeline([cfg], inputs, { evalBatch: 3 });
    expect({ ...b, seconds: 0, createdAt: 0 }).toEqual({ ...a, seconds: 0, createdAt: 0 });
    // the evaluation sessions of the second run saw batches of at most 3 images
    const fqRows = sessions
      .slice(firstRuns)
      .filter((s) => s.fakeQuant())
      .flatMap((s) => s.outputs.map((o) => o.length / 10));
    expect(Math.max(...fqRows)).toBe(3);
    await expect(runPipeline([cfg], inputs, { evalBatch: 0 })).rejects.toThrow(/positive whole number/);
  });

  it('quantizes weights once per weight key and evaluates the uncorrected model once per quantization key', async () => {
    const { engine, sessions } = spyEngine(wasm, 'output');
    const c = (extra = {}) =>
      resolveConfig({ backend: 'tensorrt', model: 'test:tiny', calib: 4, eval: 6, seed: 3, ...extra });
    const configs = [
      c(), //                                           weights A, quant 1
      c({ aObserver: 'mse' }), //                        weights A, quant 2
      c({ biasCorrection: true }), //                    weights A, quant 1 + fix
      c({ bnReestimate: true }), //                      weights A, quant 1 + fix
      c({ wBits: 4 }), //                                weights B, quant 3
      c({ wBits: 4, biasCorrection: true }), //          weights B, quant 3 + fix
    ];
    const applied: boolean[] = [];
    // the FP32 graph stands in for a corrected one
    vi.mocked(fixes.applyFixes).mockImplementation(async (inp, o) => {
      applied.push(o.biasCorrection);
      return { graph: inp.graph, report: { seconds: 0 } };
    });
    const spy = vi.mocked(quantize.quantizeWeights);
    spy.mockClear();
    const results = await runPipeline(configs, inputsFor(engine, syntheticImages(12, 10, 7), 'reuse')).finally(() =>
      vi.mocked(fixes.applyFixes).mockReset(),
    );
    expect(spy).toHaveBeenCalledTimes(2);
    expect(applied).toEqual([true, false, true]);
    // fake-quant sessions: one per quantization key (3), never one per config (6)
    expect(sessions.filter((s) => s.fakeQuant())).toHaveLength(3);
    const [plain, , bc, bn, w4, w4bc] = results;
    expect(bc.beforeFixes).toEqual(plain.quant);
    expect(bn.beforeFixes).toEqual(plain.quant);
    expect(w4bc.beforeFixes).toEqual(w4.quant);
    expect(plain.beforeFixes).toBeUndefined();
    for (const r of [bc, bn, w4bc]) expect(r.quant).toEqual(r.fp32); // the stand-in graph was evaluated
    expect(quantize.quantKey(configs[2])).toBe(quantize.quantKey(configs[0]));
    expect(quantize.weightKey(configs[1])).toBe(quantize.weightKey(configs[0]));
    expect(quantize.weightKey(configs[4])).not.toBe(quantize.weightKey(configs[0]));
  });
});
