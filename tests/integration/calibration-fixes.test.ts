/**
 * Issue 12 on the real MobileNet-V2, cheap enough for CI (about two minutes on two shared
 * cores with onnxruntime-node): a small subset of the usual split (seed 0), tolerances
 * derived from what this subset measured (figures in the comments). The full-size
 * figures (128 calibration / 872 evaluation images; KL, MSE and percentile lose ≤ 2.5
 * points, no observer more than 6, SNPE cle + bias correction ≥ 82.0%) are printed by
 * `npm run bench:calib` and recorded in docs/results.md.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { DiskCropStore, loadImageFolder } from '../../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { prepareCrops } from '../../src/lib/data/crops.ts';
import { sampleSplits } from '../../src/lib/data/dataset.ts';
import { createNodeEngine, createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { evaluate } from '../../src/lib/experiment/evaluate.ts';
import { runPipeline } from '../../src/lib/pipeline/run.ts';
import type { ExperimentResult, RunInputs } from '../../src/lib/experiment/types.ts';
import { applyCle } from '../../src/lib/corrections/cle-run.ts';
import { measureSensitivity } from '../../src/lib/pipeline/sensitivity.ts';
import { mixedPrecisionChoices, rankBySensitivity } from '../../src/lib/analysis/sensitivity.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { parseModel, serializeModel } from '../../src/lib/onnx/model.ts';
import type { Graph } from '../../src/lib/onnx/ir.ts';
import { CLASS_INDEX, HAVE_SHARED_DATA, readModel, SAMPLE_DIR } from '../support/shared-data.ts';

const CALIB = 32;
const EVAL = 100;
// Bounds: the subset's measured figures (comments below) with a margin for the noise of
// 100 images; they still fail on the failures issue 12 is about (KL: −83 and −37 points).
const OBSERVER_TOL = 8;
const AGREE_TOL = 0.85;
const ABSORB_TOL = 0.9;
const SNPE_TOL = 6;

let inputs: RunInputs;
beforeAll(async () => {
  if (!HAVE_SHARED_DATA) return;
  inputs = {
    // onnxruntime-node when installed (several times faster), else wasm
    engine: await createNodeEngine('node', 2).catch(() => createNodeWasmEngine(2)),
    modelBytes: readModel(),
    model: { id: 'mobilenet-v2', label: 'MobileNet-V2', preprocess: TORCHVISION_SPEC, classes: 1000 },
    dataset: await loadImageFolder(SAMPLE_DIR, CLASS_INDEX),
    cropStore: new DiskCropStore(),
  };
});

const pts = (r: ExperimentResult) => 100 * (r.fp32.top1 - r.quant.top1);
const show = (r: ExperimentResult) =>
  console.log(
    `${r.config.backend} ${r.config.wObserver}/${r.config.aObserver}${r.config.cle ? ' +cle' : ''}${r.config.biasCorrection ? ' +bc' : ''}: FP32 ${(100 * r.fp32.top1).toFixed(1)} → ${(100 * r.quant.top1).toFixed(1)} (agreement ${(100 * r.agreement).toFixed(0)}%)${r.beforeFixes ? ` (before fixes ${(100 * r.beforeFixes.top1).toFixed(1)})` : ''}`,
  );

describe.skipIf(!HAVE_SHARED_DATA)('activation observers on the real MobileNet-V2 (W8A8, small subset)', () => {
  // Measured on this subset (FP32 89.0; drop in points, agreement with FP32): TensorRT KL 6
  // (89%), MSE 4 (90%), percentile 5 (90%); Academic KL 5 (88%), MSE 0 (95%), percentile 0
  // (97%). At full size all six lose ≤ 1.8 points (docs/results.md). Before the zero-bin fix KL
  // gave 0.2% (TensorRT) and 47.0% (Academic) top-1 at full size.
  for (const backend of ['tensorrt', 'academic'] as const) {
    it(`${backend}: KL, MSE and percentile stay within a few points of FP32`, async () => {
      const configs = (['kl', 'mse', 'percentile'] as const).map((aObserver) =>
        resolveConfig({ backend, aObserver, calib: CALIB, eval: EVAL, seed: 0 }),
      );
      const out = await runPipeline(configs, inputs, {});
      out.forEach(show);
      for (const r of out) {
        expect(pts(r), `${backend} ${r.config.aObserver}`).toBeLessThanOrEqual(OBSERVER_TOL);
        expect(r.agreement, `${backend} ${r.config.aObserver}`).toBeGreaterThanOrEqual(AGREE_TOL);
      }
    });
  }
});

describe.skipIf(!HAVE_SHARED_DATA)('cross-layer equalization on the real MobileNet-V2', () => {
  it('the equalized float model computes the same function (ReLU6 kept as Relu → per-channel Min)', async () => {
    const { dataset, engine } = inputs;
    const split = sampleSplits(dataset.items.length, CALIB, EVAL, 0);
    const items = [...split.calib, ...split.eval.slice(0, 64)].map((i) => dataset.items[i]);
    const { crops } = await prepareCrops(items, TORCHVISION_SPEC, inputs.cropStore, {
      namespace: dataset.cacheNamespace,
    });
    const ok = crops.filter((c): c is Uint8Array => !!c);
    const [calib, evalCrops] = [ok.slice(0, CALIB), ok.slice(CALIB)];
    const labels = items.slice(CALIB).map((x) => x.label);
    const folded = foldBatchNorm(parseModel(inputs.modelBytes)).graph;
    const exact = await applyCle(engine, folded, calib, TORCHVISION_SPEC, { batchSize: 8, absorb: false });
    expect(exact.report.pairs).toBe(34); // 17 inverted residual blocks × 2 (the first pairs the stem conv with its depthwise)
    const absorbed = await applyCle(engine, folded, calib, TORCHVISION_SPEC, { batchSize: 8 });
    expect(absorbed.report.absorbedPairs).toBeGreaterThan(0);
    const run = async (g: Graph) => {
      const s = await engine.createSession(serializeModel(g));
      try {
        return await evaluate(s, evalCrops, labels, TORCHVISION_SPEC, { batchSize: 16 });
      } finally {
        await s.release();
      }
    };
    const [a, b, c] = [await run(folded), await run(exact.graph), await run(absorbed.graph)];
    const same = (x: typeof a) => x.preds.filter((p, i) => p === a.preds[i]).length / a.n;
    // equalization alone is exact up to float rounding; absorption is exact except for
    // values below mean − 3σ and at zero-padded borders (measured: 60 of 64 decisions kept)
    expect(same(b)).toBe(1);
    expect(same(c)).toBeGreaterThanOrEqual(ABSORB_TOL);
  });

  // Measured on this subset: plain 82.0% (agreement 87%); cle + bc 89.0% (92%; cle alone
  // 85.0%). At full size (872 images): plain 81.0%, cle + bc 82.2% (lesson cross-layer-equalization).
  it('SNPE W8A8: cle + bias correction agrees with FP32 more often than the plain model', async () => {
    const base = { backend: 'snpe' as const, calib: CALIB, eval: EVAL, seed: 0 };
    const out = await runPipeline(
      [resolveConfig(base), resolveConfig({ ...base, cle: true, biasCorrection: true })],
      inputs,
      {},
    );
    out.forEach(show);
    const [plain, cleBc] = out;
    // measured +5 points of agreement; 3 images of slack
    expect(cleBc.agreement).toBeGreaterThanOrEqual(plain.agreement + 0.02);
    expect(pts(cleBc)).toBeLessThanOrEqual(SNPE_TOL);
  });
});

describe.skipIf(!HAVE_SHARED_DATA)('per-layer sensitivity on the real MobileNet-V2 (academic W4, MinMax)', () => {
  // Measured on 16 images: Conv_2 (the first depthwise conv, 288 weights) changes 43.8% of
  // FP32's decisions alone, then Conv_9 31.3%, Conv_4 25.0%.
  it('ranks the first depthwise conv among the three most sensitive of 51 candidate layers', async () => {
    const cfg = resolveConfig({
      backend: 'academic',
      wBits: 4,
      wObserver: 'minmax',
      aObserver: 'minmax',
      calib: CALIB,
      eval: EVAL,
      seed: 0,
    });
    const s = await measureSensitivity(cfg, inputs, { images: 16 });
    expect(s.layers).toHaveLength(51); // 53 weight layers less the first and last (8-bit in academic)
    const ranked = rankBySensitivity(s.layers);
    expect(ranked.slice(0, 3).map((l) => l.layer)).toContain('Conv_2');
    expect(ranked[0].disagreement).toBeGreaterThan(0.2);
    const sizes = mixedPrecisionChoices(ranked, [0, 1, 3, 5], 4).map((c) => c.sizeBits);
    expect(sizes).toEqual([...sizes].sort((a, b) => a - b));
    expect(sizes[0]).toBe(4 * s.layers.reduce((n, l) => n + l.params, 0));
  });
});
