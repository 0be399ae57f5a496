/**
 * "See why accuracy drops" on the real MobileNet-V2, W4A8 with per-channel MinMax 4-bit
 * weights (TensorRT preset), 128 calibration and 872 evaluation images of the sample.
 * Reference figures (issue 4, a throwaway reference implementation on all 1,000 images):
 * FP32 83.1%, W4A8 12.9% uncorrected, 68.6% with empirical bias correction alone.
 * One prepared group (FP32 evaluation + calibration) is shared by both fixes; the
 * per-layer analysis runs once, on the bias-corrected config, over 32 evaluation images.
 * Top-1 standard error on 872 images is ~1.6 points at 50%: bounds allow for it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { layerDetail } from '../../src/lib/analysis/detail.ts';
import { channelRanges, vanishedChannels } from '../../src/lib/analysis/metrics.ts';
import { DiskCropStore, loadImageFolder } from '../../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { quantizeWeights } from '../../src/lib/experiment/quantize.ts';
import { layersTable, worstLayers } from '../../src/lib/experiment/report.ts';
import { runPipeline } from '../../src/lib/pipeline/run.ts';
import type { ExperimentResult, RunInputs } from '../../src/lib/experiment/types.ts';
import type { LayerDetailContext } from '../../src/lib/analysis/detail.ts';
import { CLASS_INDEX, HAVE_SHARED_DATA, readModel, SAMPLE_DIR } from '../support/shared-data.ts';
import { figuresEngine } from '../support/test-engine.ts';

describe.skipIf(!HAVE_SHARED_DATA)(
  'per-layer analysis and fixes on the real MobileNet-V2 (W4A8 per-channel MinMax)',
  () => {
    let context: LayerDetailContext;
    let bc: ExperimentResult;
    let bn: ExperimentResult;
    const base = {
      backend: 'tensorrt' as const,
      wBits: 4,
      wObserver: 'minmax' as const,
      wGranularity: 'per-channel' as const,
      model: 'mobilenet-v2',
      calib: 128,
      eval: 872,
      seed: 0,
    };
    const bcCfg = resolveConfig({ ...base, biasCorrection: true });
    const bnCfg = resolveConfig({ ...base, bnReestimate: true });

    beforeAll(async () => {
      const t0 = performance.now();
      const dataset = await loadImageFolder(SAMPLE_DIR, CLASS_INDEX);
      const engine = await figuresEngine(2);
      const inputs: RunInputs = {
        engine,
        modelBytes: readModel(),
        model: { id: 'mobilenet-v2', label: 'MobileNet-V2', preprocess: TORCHVISION_SPEC, classes: 1000 },
        dataset,
        cropStore: new DiskCropStore(),
      };
      // one loop: both configs share the prepared group; only the bias-corrected one is analysed
      [bc, bn] = await runPipeline([bcCfg, bnCfg], inputs, {
        hooks: {
          analyzeFor: (c) => (c === bcCfg ? { images: 32 } : undefined),
          keepContext: (_r, c) => (context = c),
        },
      });
      console.log(
        `bias correction + analysis: ${bc.seconds.toFixed(0)} s (fixes ${bc.fixes!.seconds.toFixed(0)} s, analysis ${bc.analysis!.seconds.toFixed(0)} s); BN re-estimation: ${bn.seconds.toFixed(0)} s`,
      );
      const p = (x: number) => (100 * x).toFixed(1);
      console.log(
        `FP32 ${p(bc.fp32.top1)}; W4A8 ${p(bc.beforeFixes!.top1)} → bias correction ${p(bc.quant.top1)}, BN re-estimation ${p(bn.quant.top1)} (before ${p(bn.beforeFixes!.top1)})`,
      );
      console.log(
        `weight-only ${p(bc.analysis!.weightOnly.top1)}, activation-only ${p(bc.analysis!.activationOnly.top1)}; logits SQNR ${JSON.stringify(bc.analysis!.logitsSqnrDb)}`,
      );
      console.log(
        `bias correction residual ${bc.fixes!.biasCorrection!.residual.map((x) => x.toFixed(4)).join(' → ')}; BN ${bn.fixes!.bnReestimate!.residual.map((x) => x.toFixed(4)).join(' → ')}`,
      );
      console.log(layersTable(bc.layers!));
      console.log(
        `worst layers: ${worstLayers(bc.layers!)
          .map((l) => `${l.name} ${l.standalone.sqnrDb.toFixed(1)} dB`)
          .join(', ')}`,
      );
      console.log(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    });

    it('the uncorrected W4A8 model collapses, as in the reference (12.9%)', () => {
      expect(bc.beforeFixes!.top1).toBeLessThan(0.3);
      expect(bn.beforeFixes!.top1).toBe(bc.beforeFixes!.top1);
      expect(bc.fp32.top1 - bc.beforeFixes!.top1).toBeGreaterThan(0.5);
    });

    it('empirical bias correction recovers more than 30 points of top-1 (reference 12.9% → 68.6%)', () => {
      expect(bc.quant.top1 - bc.beforeFixes!.top1).toBeGreaterThan(0.3);
      expect(bc.quant.top1).toBeGreaterThan(0.55);
      expect(bc.quant.top1).toBeLessThan(bc.fp32.top1);
      const r = bc.fixes!.biasCorrection!.residual;
      expect(r[r.length - 1]).toBeLessThan(r[0] / 10);
    });

    it('BN re-estimation changes top-1 too (recovers more than 30 points)', () => {
      expect(bn.quant.top1 - bn.beforeFixes!.top1).toBeGreaterThan(0.3);
      const r = bn.fixes!.bnReestimate!.residual;
      expect(r[r.length - 1]).toBeLessThan(r[0] / 10);
    });

    it('the per-layer table covers every quantized layer in network order and names the worst layers', () => {
      const layers = bc.layers!;
      expect(layers).toHaveLength(context.points.weights.length);
      expect(layers.map((l) => l.weight)).toEqual(context.points.weights.map((w) => w.initializer));
      expect(layers.map((l) => l.index)).toEqual(layers.map((_, i) => i));
      for (const l of layers) {
        expect(Number.isFinite(l.weightSqnrDb)).toBe(true);
        expect(Number.isFinite(l.standalone.sqnrDb)).toBe(true);
        expect(l.standalone.cosine).toBeGreaterThan(0);
        expect(l.channelDrift.fpMean).toHaveLength(l.channels);
        expect(l.weightRanges.max).toHaveLength(l.channels);
      }
      // the TensorRT preset keeps no layer at 8 bits
      expect(layers.every((l) => l.weightBits === 4)).toBe(true);
      const worst = worstLayers(layers);
      expect(worst).toHaveLength(5);
      expect(new Set(worst.map((l) => l.name)).size).toBe(5);
      const median = [...layers].map((l) => l.standalone.sqnrDb).sort((a, b) => a - b)[layers.length >> 1];
      expect(worst[4].standalone.sqnrDb).toBeLessThan(median);
      expect(layersTable(layers)).toContain(worst[0].name);
    });

    it('whole-tensor weight SQNR ranks depthwise layers better than the others (the issue\'s "poor predictor" fact)', () => {
      const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const dw = bc.layers!.filter((l) => l.depthwise);
      const other = bc.layers!.filter((l) => !l.depthwise);
      expect(dw.length).toBe(17);
      expect(avg(dw.map((l) => l.weightSqnrDb))).toBeGreaterThan(avg(other.map((l) => l.weightSqnrDb)));
    });

    it('per-tensor int8 weights round whole channels of the first depthwise conv to zero (reference: 5 of 32)', () => {
      const pt = resolveConfig({ ...base, wBits: 8, wGranularity: 'per-tensor' });
      const w = quantizeWeights(context.graph, context.points, pt);
      const i = context.points.weights.findIndex((p) => p.depthwise);
      const init = context.graph.initializers.get(w[i].point.initializer)!;
      const fp = init.data as Float32Array;
      const vanished = vanishedChannels(fp, w[i].values, init.dims, 0);
      const r = channelRanges(fp, init.dims, 0);
      const amax = Array.from(r.max, (m, c) => Math.max(m, -r.min[c]));
      console.log(
        `first depthwise conv, per-tensor int8: ${vanished} of ${init.dims[0]} channels vanish; channel |max| ${Math.min(...amax).toPrecision(3)} … ${Math.max(...amax).toPrecision(3)}`,
      );
      expect(vanished).toBeGreaterThanOrEqual(3);
      expect(Math.max(...amax) / Math.min(...amax)).toBeGreaterThan(1000);
      // per-channel keeps every channel
      expect(bc.layers![1].vanishedChannels).toBe(0);
    });

    it('whole-model split: 4-bit weights hurt far more than 8-bit activations', () => {
      const a = bc.analysis!;
      expect(a.weightOnly.top1).toBeLessThan(a.activationOnly.top1 - 0.3);
      expect(a.logitsSqnrDb.weightOnly).toBeLessThan(a.logitsSqnrDb.activationOnly);
      expect(a.activationOnly.top1).toBeGreaterThan(bc.fp32.top1 - 0.1);
    });

    it('after bias correction the per-layer mean drift is small on held-out images', () => {
      const mean = bc.layers!.reduce((s, l) => s + l.drift.meanAbsShift, 0) / bc.layers!.length;
      expect(mean).toBeLessThan(0.3);
    });

    it('layerDetail gives the weight histogram with its grid and the activation histogram with the calibrated range', async () => {
      const dw = bc.layers!.find((l) => l.depthwise)!;
      const d = await layerDetail(context, dw.name, { bins: 64, sampleImages: 4 });
      expect(d.weight.counts.reduce((s, x) => s + x, 0)).toBe(context.graph.initializers.get(dw.weight)!.data.length);
      expect(d.weight.scale).toHaveLength(dw.channels);
      expect(d.weight.clipMax.every((m, c) => m >= dw.weightRanges.max[c] * (1 - 1e-6))).toBe(true);
      expect(d.activation!.source).toBe('sample');
      expect(d.activation!.calibMax).toBe(dw.activationInput!.max);
      expect(d.activation!.counts.reduce((s, x) => s + x, 0)).toBeGreaterThan(0);
    });
  },
);
