/**
 * The background accuracy estimate: top-1 and FP32 agreement of a config on a small fixed
 * subset of its evaluation images (the evaluation split drawn for `images` images, a seeded
 * subset of every larger evaluation split of the same seed, so every estimate of one model
 * and data split looks at the same images), reusing the FP32
 * outputs and calibration statistics already collected for that model, data split and
 * fold setting (`EstimateCache`). With them cached, a change costs only the weight layers
 * whose quantizer changed (the rest come from the previous two estimates), one graph build
 * and a few batches of ESTIMATE_BATCH images. Same pipeline code as a Run (prepareGroup,
 * runConfig with the fix stages), so the estimate differs from the full run only by its
 * image count (the unit tests compare the two).
 */
import { QpError, throwIfAborted } from '../util/errors.ts';
import { yieldMacrotask } from '../util/checkpoint.ts';
import type { ExperimentConfig } from '../config/types.ts';
import { ESTIMATE_IMAGES, type AccuracyEstimate } from '../protocol/instant.ts';
import { parseModel } from '../onnx/model.ts';
import { foldBatchNorm } from '../onnx/fold-bn.ts';
import { findQuantPoints } from '../onnx/placement.ts';
import type { EvalOutcome } from '../experiment/evaluate.ts';
import { loadSplitCrops } from '../experiment/run.ts';
import type { ActivationStats } from '../quant/types.ts';
import type { Graph } from '../onnx/ir.ts';
import { calibrationNeeds } from '../quant/observers.ts';
import { wilsonInterval } from '../quant/metrics.ts';
import { configHash } from '../config/hash.ts';
import { quantizeWeights, type WeightMemo, type WeightQuant } from '../experiment/quantize.ts';
import type { RunInputs } from '../experiment/types.ts';
import type { Engine } from '../engine/types.ts';
import { DEFAULT_TUNING, prepareGroup, resolveModelInput, runConfig, type PreparedGroup } from './run.ts';

export { ESTIMATE_IMAGES } from '../protocol/instant.ts';

/**
 * Images per batch of the estimate's evaluation. A newer change cancels an older estimate
 * at a batch boundary, and the engine runs one batch at a time, so this bounds how long a
 * newer estimate waits for an older one to let go of the engine (8 × 100–200 ms measured on
 * two wasm threads for MobileNet-V2 on a loaded machine). The price: batches of 32 ran the same images up to
 * about 20% faster in a noisy measurement on a loaded two-core machine.
 */
export const ESTIMATE_BATCH = 8;

/** Prepared groups (FP32 outputs, calibration statistics, crops) by estimateKey; bounded by the caller. */
export type EstimateCache = Map<string, PreparedGroup>;

/** What the cached statistics depend on: model, data split, fold setting, and whether histograms were collected. */
export function estimateKey(
  modelId: string,
  dataset: string,
  cfg: ExperimentConfig,
  images: number,
  histogram: boolean,
): string {
  return JSON.stringify([modelId, dataset, cfg.foldBn, !!cfg.cle, cfg.calib, cfg.seed, images, histogram]);
}

const parsed = new WeakMap<Uint8Array, Graph>();

/**
 * Quantized weights per prepared group, by layer and quantizer: the layers quantized for the
 * latest estimate and the one before it (so going back to the previous settings, or changing
 * only activation settings or one layer's bits, re-quantizes nothing or one layer).
 */
const weightMemo = new WeakMap<
  PreparedGroup,
  { latest: Map<string, WeightQuant>; previous: Map<string, WeightQuant> }
>();

/** Weights quantized between two yields of prepareEstimate (about 20–60 ms of work). */
const PREPARE_CHUNK = 200_000;

/**
 * The weights of `cfg`, from the memo where the quantizer did not change. With `between`,
 * the layers are quantized in chunks of about PREPARE_CHUNK values and `between` is awaited
 * after each (it yields to other messages, and throws to stop: then nothing is remembered).
 */
async function memoWeights(
  group: PreparedGroup,
  cfg: ExperimentConfig,
  between?: () => Promise<void>,
): Promise<WeightQuant[]> {
  let m = weightMemo.get(group);
  if (!m) weightMemo.set(group, (m = { latest: new Map(), previous: new Map() }));
  const known = new Map([...m.previous, ...m.latest]);
  const used = new Map<string, WeightQuant>();
  // record what this estimate used: a lookup in `known`, else a fresh quantization
  const memo: WeightMemo = {
    get: (k) => {
      const q = known.get(k);
      if (q) used.set(k, q);
      return q;
    },
    set: (k, q) => used.set(k, q),
  };
  const all = group.points.weights;
  const weights: WeightQuant[] = [];
  for (let i = 0; i < all.length;) {
    let j = i;
    let size = 0;
    do size += group.graph.initializers.get(all[j++].initializer)?.data.length ?? 0;
    while (j < all.length && (!between || size < PREPARE_CHUNK));
    weights.push(...quantizeWeights(group.graph, { ...group.points, weights: all.slice(i, j) }, cfg, memo));
    i = j;
    if (between && i < all.length) await between();
  }
  if (!sameKeys(used, m.latest)) {
    m.previous = m.latest;
    m.latest = used;
  }
  return weights;
}

function sameKeys(a: Map<string, unknown>, b: Map<string, unknown>): boolean {
  if (a.size !== b.size) return false;
  for (const k of a.keys()) if (!b.has(k)) return false;
  return true;
}

/** What is kept across visits (IndexedDB in the browser): the costly part of a prepared group. */
export interface StoredGroupStats {
  key: string;
  stats: [string, ActivationStats][];
  fp32: EvalOutcome;
  skipped: number;
}

/** Where the statistics of the last prepared group survive a reload (the worker passes IndexedDB). */
export interface StatsStore {
  load(key: string): Promise<StoredGroupStats | undefined>;
  save(s: StoredGroupStats): Promise<void>;
}

const ALL_PLACEMENT = { conv: true, gemm: true, add: true, pool: true, concat: true, modelInput: true };

/**
 * A prepared group from stored statistics: the graph, points and crops are rebuilt (crops
 * come from the crop cache), FP32 outputs and calibration statistics are not recomputed.
 * Undefined when the stored record does not fit these images (then the caller prepares anew).
 */
async function rebuildGroup(
  base: Graph,
  cfg: ExperimentConfig,
  inputs: RunInputs,
  stored: StoredGroupStats,
  signal?: AbortSignal,
): Promise<PreparedGroup | undefined> {
  // a transform stage (cross-layer equalization) changes the graph the statistics belong to
  if (cfg.cle) return undefined;
  const graph = cfg.foldBn ? foldBatchNorm(base).graph : base;
  const points = findQuantPoints(graph, ALL_PLACEMENT);
  const { calibCrops, evalCrops, evalLabels } = await loadSplitCrops(inputs, cfg, { signal });
  const stats = new Map(stored.stats);
  if (evalCrops.length !== stored.fp32.n || points.activations.some((p) => !stats.has(p.tensor))) return undefined;
  return {
    graph,
    points,
    calibCrops,
    evalCrops,
    evalLabels,
    skipped: stored.skipped,
    fp32: stored.fp32,
    stats,
    seconds: 0,
    uncorrected: new Map(),
    stageShared: new Map(),
  };
}

/** The keys of the prepared groups that can serve `cfg` (with histograms first). */
function groupKeys(cfg: ExperimentConfig, dataset: string, images: number): string[] {
  const needs = calibrationNeeds([cfg.aObserver]);
  // statistics with histograms serve observers that need none too
  return [true, false].filter((h) => h || !needs.histogram).map((h) => estimateKey(cfg.model, dataset, cfg, images, h));
}

/**
 * Gets the estimate of `cfg` ready while a change settles (the caller's debounce): when a
 * group in memory serves it, its weights are quantized now, so the estimate itself starts
 * with the graph build. Resolves whether it did; nothing is computed without such a group.
 * It yields to other messages every few tens of milliseconds (a weight view of the next
 * change waits for one chunk, not for all the weights) and throws CANCELLED when `signal`
 * aborts (a newer change), remembering nothing then.
 */
export async function prepareEstimate(
  cfg: ExperimentConfig,
  dataset: string,
  cache: EstimateCache,
  opts: { images?: number; signal?: AbortSignal } = {},
): Promise<boolean> {
  const images = Math.min(opts.images ?? ESTIMATE_IMAGES, cfg.eval);
  if (!Number.isInteger(images) || images < 1) return false;
  const group = groupKeys(cfg, dataset, images)
    .map((k) => cache.get(k))
    .find((g) => g !== undefined);
  if (!group) return false;
  const between = async () => {
    await yieldMacrotask();
    throwIfAborted(opts.signal);
  };
  // first let a newer change already queued stop this one before it starts
  await between();
  await memoWeights(group, { ...cfg, eval: images }, between);
  return true;
}

/**
 * Estimate `cfg` on `images` evaluation images (capped by cfg.eval). Throws CANCELLED when
 * `signal` aborts, and the pipeline's errors otherwise.
 */
export async function estimateAccuracy(
  cfg: ExperimentConfig,
  rawInputs: RunInputs,
  cache: EstimateCache,
  opts: { images?: number; signal?: AbortSignal; maxCached?: number; store?: StatsStore } = {},
): Promise<AccuracyEstimate> {
  const t0 = performance.now();
  const images = Math.min(opts.images ?? ESTIMATE_IMAGES, cfg.eval);
  if (!Number.isInteger(images) || images < 1)
    throw new QpError('ARG_INVALID', `The estimate needs a whole number of images from 1 up, got ${images}.`);
  let base = parsed.get(rawInputs.modelBytes);
  if (!base) parsed.set(rawInputs.modelBytes, (base = parseModel(rawInputs.modelBytes)));
  const { inputs, tuning } = resolveModelInput(base, rawInputs, DEFAULT_TUNING);
  const sub: ExperimentConfig = { ...cfg, eval: images };
  const needs = calibrationNeeds([cfg.aObserver]);
  const keys = groupKeys(cfg, rawInputs.dataset.name, images);
  let group = keys.map((k) => cache.get(k)).find((g) => g !== undefined);
  if (!group && opts.store) {
    for (const k of keys) {
      const stored = await opts.store.load(k).catch(() => undefined);
      if (stored?.key === k) group = await rebuildGroup(base, sub, inputs, stored, opts.signal);
      if (group) {
        cache.set(k, group);
        break;
      }
    }
  }
  const statsCached = !!group;
  if (!group) {
    // collect moments too, so a later switch to ClipStd reuses this group
    group = await prepareGroup(base, [sub, { ...sub, aObserver: 'clipstd' }], inputs, { signal: opts.signal, tuning });
    const key = estimateKey(cfg.model, rawInputs.dataset.name, cfg, images, needs.histogram);
    cache.set(key, group);
    // kept for the next visit; a full quota only costs that
    await opts.store
      ?.save({ key, stats: [...group.stats], fp32: group.fp32, skipped: group.skipped })
      .catch(() => undefined);
    while (cache.size > (opts.maxCached ?? 2)) cache.delete(cache.keys().next().value!);
  }
  const tWeights = performance.now();
  const weights = await memoWeights(group, sub);
  const tBuild = performance.now();
  // the evaluation starts once its session exists
  let tEval: number | undefined;
  const e = inputs.engine;
  const engine: Engine = {
    kind: e.kind,
    description: e.description,
    createSession: async (model, options) => {
      const session = await e.createSession(model, options);
      tEval ??= performance.now();
      return session;
    },
  };
  // a fresh map: the estimate must not reuse an evaluation of another image count
  const evalTuning = { ...tuning, evalBatch: Math.min(tuning.evalBatch, ESTIMATE_BATCH) };
  const r = await runConfig(engine, { ...group, uncorrected: new Map() }, sub, inputs, weights, {
    signal: opts.signal,
    tuning: evalTuning,
  });
  const tEnd = performance.now();
  const n = group.evalCrops.length;
  const hits = Math.round(r.quant.top1 * n);
  const agree = Math.round(r.agreement * n);
  return {
    configHash: await configHash(cfg),
    images: n,
    top1: r.quant.top1,
    top1Interval: wilsonInterval(hits, n),
    agreement: r.agreement,
    agreementInterval: wilsonInterval(agree, n),
    fp32Top1: r.fp32.top1,
    statsCached,
    ...(cfg.ptq !== 'none' ? { ptqSkipped: cfg.ptq } : {}),
    seconds: (tEnd - t0) / 1000,
    split: {
      statistics: (tWeights - t0) / 1000,
      weights: (tBuild - tWeights) / 1000,
      build: ((tEval ?? tBuild) - tBuild) / 1000,
      evaluate: (tEnd - (tEval ?? tBuild)) / 1000,
    },
  };
}
