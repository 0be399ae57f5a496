/**
 * The reconstruction stage of the pipeline, between calibration statistics and the
 * fake-quant graph: for each chunk of layers one engine pass gathers the Gram matrices
 * the solvers need, then AdaRound or GPTQ runs per layer in network order, replacing the
 * round-to-nearest weights. Layers whose bit width is 8 or more keep round-to-nearest
 * (at 8 bits its error is already small, and the classifier alone would cost more than
 * all the other layers).
 */
import { throwIfAborted } from '../protocol/errors.ts';
import type { ExperimentConfig } from '../protocol/config.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { Engine } from '../engine/types.ts';
import { ensureOpset, insertFakeQuant } from '../onnx/fake-quant.ts';
import { cloneGraph, type Graph } from '../onnx/ir.ts';
import { serializeModel } from '../onnx/model.ts';
import { adaround } from '../ptq/adaround.ts';
import { gptq, spdInverse } from '../ptq/gptq.ts';
import { buildCrossGramGraph, gramLayout, positionsOf, type GramLayout } from '../ptq/gram-graph.ts';
import { codesError, codesToInitializer, layerProblem, nearestCodes, outputEnergy, targetWeights, type LayerProblem } from '../ptq/problem.ts';
import type { PtqLayerReport, PtqReport } from '../ptq/types.ts';
import { batches } from './batches.ts';
import type { ActivationQuant, WeightQuant } from './quantize.ts';

/** Layers per pass of the quantized-prefix reconstruction (each pass runs both models once). */
export const PREFIX_CHUNK_LAYERS = 14;

export interface ReconstructOptions {
  signal?: AbortSignal;
  /** called before each layer (done = layers finished) */
  onProgress?: (done: number, total: number, node: string) => void;
}

function solveLayer(p: LayerProblem, cfg: ExperimentConfig, wq: WeightQuant, bits: number, t1: number): { report: PtqLayerReport; values: Float32Array } {
  const rtn = nearestCodes(p);
  const codes = cfg.ptq === 'adaround' ? adaround(p, { iters: cfg.ptqIters }) : gptq(p);
  const energy = outputEnergy(p) || 1;
  let flips = 0;
  for (let k = 0; k < codes.length; k++) if (codes[k] !== rtn[k]) flips++;
  return {
    report: {
      node: wq.point.node, initializer: wq.point.initializer, bits,
      errorBefore: codesError(p, rtn) / energy,
      errorAfter: codesError(p, codes) / energy,
      flips: flips / codes.length,
      seconds: (performance.now() - t1) / 1000,
    },
    values: codesToInitializer(p, codes, wq.point.axis),
  };
}

export interface PrefixOptions extends ReconstructOptions {
  batchSize: number;
  /** Gram pass progress within a chunk */
  onGramProgress?: (done: number, total: number) => void;
}

/**
 * Reconstruction with inputs from the quantized prefix and targets from FP32 (MQBench):
 * layers go in chunks of PREFIX_CHUNK_LAYERS; for each chunk one pass over the
 * calibration images runs the FP32 model and the quantized model (activations
 * fake-quantized, weights of earlier chunks already reconstructed, later ones
 * round-to-nearest) side by side and gathers X̃X̃ᵀ and XX̃ᵀ of the chunk's layers; each
 * layer then minimises ‖WX − W̃X̃‖² = ‖(W* − W̃)X̃‖² + const (problem.ts targetWeights).
 * Errors in the report are relative to ‖W*X̃‖².
 */
export async function reconstructFromQuantizedPrefix(
  engine: Engine,
  graph: Graph,
  weights: WeightQuant[],
  acts: ActivationQuant[],
  crops: Uint8Array[],
  spec: PreprocessSpec,
  cfg: ExperimentConfig,
  opts: PrefixOptions,
): Promise<{ weights: WeightQuant[]; report: PtqReport }> {
  if (cfg.ptq === 'none') throw new Error('reconstructFromQuantizedPrefix needs a reconstruction method');
  const t0 = performance.now();
  let gramSeconds = 0;
  const current = [...weights];
  const layers: PtqLayerReport[] = new Array(weights.length);
  const fp = cloneGraph(graph, { shareInitializers: true });
  ensureOpset(fp, 11);
  const actMap = new Map(acts.map((a) => [a.point.tensor, a.qparams]));
  const bitsOf = (wq: WeightQuant) => Math.round(Math.log2(wq.qparams.qmax - wq.qparams.qmin + 1));
  const todo: { index: number; layout: GramLayout }[] = [];
  weights.forEach((wq, index) => {
    const layout = gramLayout(graph, wq.point);
    const skipped = typeof layout === 'string' ? layout : bitsOf(wq) >= 8 ? '8-bit layers keep round-to-nearest' : undefined;
    if (skipped || typeof layout === 'string') {
      layers[index] = { node: wq.point.node, initializer: wq.point.initializer, bits: bitsOf(wq), errorBefore: NaN, errorAfter: NaN, flips: 0, seconds: 0, skipped };
    } else todo.push({ index, layout });
  });
  let done = 0;
  for (let c0 = 0; c0 < todo.length; c0 += PREFIX_CHUNK_LAYERS) {
    const chunk = todo.slice(c0, c0 + PREFIX_CHUNK_LAYERS);
    throwIfAborted(opts.signal);
    const tg = performance.now();
    const quant = insertFakeQuant(graph, { weights: new Map(current.map((w) => [w.point.initializer, w.values])), activations: actMap });
    ensureOpset(quant, 11);
    const { graph: merged, outputs } = buildCrossGramGraph(fp, quant, chunk.map((c) => c.layout));
    const session = await engine.createSession(serializeModel(merged));
    const acc = outputs.map((o) => {
      const n = o.layout.groups * o.layout.cols * o.layout.cols;
      return { o, gram: new Float64Array(n), cross: new Float64Array(n), positions: 0 };
    });
    try {
      const input = session.inputNames[0];
      const fetches = outputs.flatMap((o) => [o.gram, o.cross, o.shape]);
      let b = 0;
      const nb = Math.ceil(crops.length / opts.batchSize);
      for (const batch of batches(crops, spec, opts.batchSize)) {
        throwIfAborted(opts.signal);
        const res = await session.run({ [input]: batch.tensor }, fetches);
        for (const a of acc) {
          const g = res[a.o.gram].data;
          const x = res[a.o.cross].data;
          for (let i = 0; i < g.length; i++) {
            a.gram[i] += g[i];
            a.cross[i] += x[i];
          }
          a.positions += positionsOf(a.o, res[a.o.shape].data);
        }
        opts.onGramProgress?.(++b, nb);
      }
    } finally {
      await session.release();
    }
    gramSeconds += (performance.now() - tg) / 1000;
    for (let k = 0; k < chunk.length; k++) {
      const { index } = chunk[k];
      const wq = weights[index];
      throwIfAborted(opts.signal);
      opts.onProgress?.(done, todo.length, wq.point.node);
      await new Promise((r) => setTimeout(r, 0));
      const t1 = performance.now();
      const a = acc[k];
      const init = graph.initializers.get(wq.point.initializer)!;
      const p = layerProblem(init.data as Float32Array, init.dims, wq.point.axis, a.o.layout.groups, a.gram, a.positions, wq.qparams);
      p.target = targetWeights(p, a.cross, spdInverse);
      const solved = solveLayer(p, cfg, wq, bitsOf(wq), t1);
      layers[index] = solved.report;
      current[index] = { ...wq, values: solved.values };
      done++;
    }
  }
  opts.onProgress?.(todo.length, todo.length, '');
  return {
    weights: current,
    report: {
      method: cfg.ptq, ...(cfg.ptq === 'adaround' ? { iters: cfg.ptqIters } : {}), layers,
      gramSeconds, solveSeconds: (performance.now() - t0) / 1000 - gramSeconds,
    },
  };
}
