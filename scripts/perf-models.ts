/**
 * The `bench:perf` section for the three exact-architecture models (SYNTHETIC seeded
 * weights from src/lib/models/builders.ts: timing only, never accuracy): evaluation
 * throughput in images/s on this machine's engine, next to the raw ORT figure measured
 * in the same session on the same images —
 *   raw        session.run over pre-made float tensors (the floor)
 *   product    evaluate() on uint8 crops: normalisation + run + top-k, FP32 (BN folded)
 *   fake-quant evaluate() on the TensorRT W8A8 fake-quant graph (MinMax statistics)
 * Samples are interleaved and repeated; the median is reported.
 * Must not: claim accuracy, or touch files (models are built in memory).
 */
import type { PreprocessSpec } from '../src/lib/data/types.ts';
import type { Engine } from '../src/lib/engine/types.ts';
import { batches } from '../src/lib/experiment/batches.ts';
import { collectActivationStats, DEFAULT_BINS } from '../src/lib/experiment/calibrate.ts';
import { resolveConfig } from '../src/lib/config/resolve.ts';
import { evaluate } from '../src/lib/experiment/evaluate.ts';
import { quantizeActivations, quantizeWeights } from '../src/lib/experiment/quantize.ts';
import { table } from '../src/lib/experiment/report.ts';
import { SYNTHETIC_BUILDERS } from '../src/lib/models/builders.ts';
import { MODEL_REGISTRY, type ModelId } from '../src/lib/models/registry.ts';
import { insertFakeQuant } from '../src/lib/onnx/fake-quant.ts';
import { foldBatchNorm } from '../src/lib/onnx/fold-bn.ts';
import { parseModel, serializeModel } from '../src/lib/onnx/model.ts';
import { findQuantPoints } from '../src/lib/onnx/placement.ts';

export const MODEL_IDS = MODEL_REGISTRY.map((e) => e.id);

/** `--models` value → ids: 'all' (default), 'none', or a comma list. Throws on unknown ids. */
export function parseModelList(v: string | undefined): ModelId[] {
  if (v === undefined || v === 'all') return [...MODEL_IDS];
  if (v === 'none') return [];
  const ids = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = ids.filter((id) => !(MODEL_IDS as string[]).includes(id));
  if (bad.length) throw new Error(`--models: unknown model "${bad[0]}"; known: ${MODEL_IDS.join(', ')}, or all / none`);
  return ids as ModelId[];
}

export interface ModelThroughput {
  id: ModelId;
  images: number;
  /** images per second, medians over the repeats */
  raw: number;
  product: number;
  fakeQuant: number;
  fakeQuantPoints: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/**
 * Measures one model on `crops` (uint8 crop×crop×3 made with `spec`, crop 224).
 * `repeats` interleaved rounds of raw / product / fake-quant; warm-up runs first.
 */
export async function measureModel(
  engine: Engine,
  id: ModelId,
  crops: Uint8Array[],
  labels: number[],
  spec: PreprocessSpec,
  opts: { batch: number; repeats: number },
): Promise<ModelThroughput> {
  const graph = foldBatchNorm(parseModel(SYNTHETIC_BUILDERS[id](1))).graph;
  const fp32 = serializeModel(graph);
  const tensors = [...batches(crops, spec, opts.batch)];

  // TensorRT W8A8 fake-quant graph from MinMax statistics on the same images
  const cfg = resolveConfig({ backend: 'tensorrt', model: id });
  const points = findQuantPoints(graph, cfg.placement);
  const stats = await collectActivationStats(
    engine,
    graph,
    points.activations.map((p) => p.tensor),
    crops,
    spec,
    {
      batchSize: opts.batch,
      histBatchSize: 8,
      histogram: false,
      moments: false,
      bins: DEFAULT_BINS,
    },
  );
  const acts = quantizeActivations(points, stats, cfg);
  const weights = quantizeWeights(graph, points, cfg);
  const fq = serializeModel(
    insertFakeQuant(graph, {
      weights: new Map(weights.map((w) => [w.point.initializer, w.values])),
      activations: new Map(acts.map((a) => [a.point.tensor, a.qparams])),
    }),
  );

  const fpS = await engine.createSession(fp32);
  const fqS = await engine.createSession(fq);
  try {
    for (const s of [fpS, fqS]) await s.run({ [s.inputNames[0]]: tensors[0].tensor }); // warm-up
    const raw: number[] = [];
    const product: number[] = [];
    const fake: number[] = [];
    for (let r = 0; r < opts.repeats; r++) {
      raw.push(
        await seconds(async () => {
          for (const b of tensors) await fpS.run({ [fpS.inputNames[0]]: b.tensor });
        }),
      );
      product.push(await seconds(() => evaluate(fpS, crops, labels, spec, { batchSize: opts.batch })));
      fake.push(await seconds(() => evaluate(fqS, crops, labels, spec, { batchSize: opts.batch })));
    }
    const n = crops.length;
    return {
      id,
      images: n,
      raw: n / median(raw),
      product: n / median(product),
      fakeQuant: n / median(fake),
      fakeQuantPoints: acts.length,
    };
  } finally {
    await fpS.release();
    await fqS.release();
  }
}

/** The section's table: images/s per model, and product / raw time ratios. */
export function throughputTable(rows: ModelThroughput[]): string {
  return table(
    [
      'model (SYNTHETIC weights)',
      'images',
      'raw img/s',
      'product img/s',
      'product/raw time',
      'fake-quant img/s',
      'fq/raw time',
    ],
    rows.map((r) => [
      r.id,
      String(r.images),
      r.raw.toFixed(1),
      r.product.toFixed(1),
      `${(r.raw / r.product).toFixed(2)}×`,
      `${r.fakeQuant.toFixed(1)} (${r.fakeQuantPoints} pts)`,
      `${(r.raw / r.fakeQuant).toFixed(2)}×`,
    ]),
  );
}
