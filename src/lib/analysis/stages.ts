/**
 * The analysis layer's pipeline stages: the fixes (bias correction, BN re-estimation)
 * and the per-layer analysis, in the shape experiment/stages.ts asks for. This is how
 * analysis plugs into the pipeline without experiment/ importing analysis/.
 */
import { applyCle } from './cle-run.ts';
import type { PipelineStages } from '../experiment/stages.ts';
import { analyzeQuantization } from './analyze.ts';
import { applyFixes } from './fixes.ts';

export const ANALYSIS_STAGES: PipelineStages = {
  transform: {
    label: 'Cross-layer equalization',
    wanted: (cfg) => cfg.cle,
    apply: (ctx) =>
      applyCle(ctx.engine, ctx.graph, ctx.calibCrops, ctx.spec, {
        relu6: ctx.cleRelu6,
        absorb: ctx.cleAbsorb,
        batchSize: ctx.batchSize,
        signal: ctx.signal,
      }),
  },
  fix: {
    wanted: (cfg) => cfg.biasCorrection || cfg.bnReestimate,
    apply: (ctx, cfg) =>
      applyFixes(
        {
          engine: ctx.engine,
          graph: ctx.graph,
          points: ctx.points,
          weights: ctx.weights,
          activations: ctx.activations,
          crops: ctx.calibCrops,
          spec: ctx.spec,
          batchSize: ctx.fixedBatch ? 1 : ctx.calibBatch,
          signal: ctx.signal,
          onProgress: ctx.onProgress,
        },
        { biasCorrection: cfg.biasCorrection, bnReestimate: cfg.bnReestimate },
      ),
  },
  analyze: {
    run: (ctx, images, quantized) =>
      analyzeQuantization({
        engine: ctx.engine,
        graph: ctx.graph,
        points: ctx.points,
        weights: ctx.weights,
        activations: ctx.activations,
        quantized,
        spec: ctx.spec,
        crops: ctx.evalCrops.slice(0, images),
        evalCrops: ctx.evalCrops,
        evalLabels: ctx.evalLabels,
        batchSize: ctx.fixedBatch ? 1 : 8,
        evalBatch: ctx.evalBatch,
        signal: ctx.signal,
        onProgress: ctx.onProgress,
      }),
  },
};
