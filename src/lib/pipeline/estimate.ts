/**
 * The background accuracy estimate: top-1 and FP32 agreement of a config on a small fixed
 * subset of its evaluation images (the evaluation split drawn for `images` images, a seeded
 * subset of every larger evaluation split of the same seed, so every estimate of one model
 * and data split looks at the same images), through the one pipeline loop, reusing the FP32
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
import { configHash } from '../config/hash.ts';
import { ESTIMATE_IMAGES, type AccuracyEstimate } from '../protocol/instant.ts';
import type { Graph } from '../onnx/ir.ts';
import type { EvalOutcome } from '../experiment/evaluate.ts';
import { quantizeWeights, type WeightMemo, type WeightQuant } from '../experiment/quantize.ts';
import type { RunInputs } from '../experiment/types.ts';
import type { Engine } from '../engine/types.ts';
import type { ActivationStats } from '../quant/types.ts';
import { calibrationNeeds } from '../quant/observers.ts';
import { wilsonInterval } from '../quant/metrics.ts';
import { groupKey, rebuildGroup, type PreparedGroup } from './prepare.ts';
import { runPipeline, type GroupSource } from './run.ts';

export { ESTIMATE_IMAGES } from '../protocol/instant.ts';

/**
 * Images per batch of the estimate's evaluation. A newer change cancels an older estimate
 * at a batch boundary, and the engine runs one batch at a time, so this bounds how long a
 * newer estimate waits for an older one to let go of the engine. The price: larger batches
 * run the same images somewhat faster (docs/performance.md, "In the browser").
 */
export const ESTIMATE_BATCH = 8;

/** Prepared groups (FP32 outputs, calibration statistics, crops) by estimateKey; bounded by the caller. */
export type EstimateCache = Map<string, PreparedGroup>;

/**
 * What the cached statistics depend on: model, data set, the group of configs they serve
 * (split, fold setting, equalization) at the estimate's image count, and whether histograms
 * were collected.
 */
export function estimateKey(
  modelId: string,
  dataset: string,
  cfg: ExperimentConfig,
  images: number,
  histogram: boolean,
): string {
  return JSON.stringify([modelId, dataset, groupKey({ ...cfg, eval: images }), histogram]);
}

/**
 * Quantized weights per prepared group, by layer and quantizer: the layers quantized for the
 * latest estimate and the one before it (so going back to the previous settings, or changing
 * only activation settings or one layer's bits, re-quantizes nothing or one layer).
 */
const weightMemo = new WeakMap<
  PreparedGroup,
  { latest: Map<string, WeightQuant>; previous: Map<string, WeightQuant> }
>();

/**
 * A WeightMemo over a group's latest two estimates, and `commit` to make what this
 * estimate used the latest (call it only once the weights are complete).
 */
function memoOf(group: PreparedGroup): { memo: WeightMemo; commit(): void } {
  let m = weightMemo.get(group);
  if (!m) weightMemo.set(group, (m = { latest: new Map(), previous: new Map() }));
  const state = m;
  const known = new Map([...state.previous, ...state.latest]);
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
  const commit = () => {
    if (sameKeys(used, state.latest)) return;
    state.previous = state.latest;
    state.latest = used;
  };
  return { memo, commit };
}

/**
 * Weights quantized between two yields of prepareEstimate: a short stretch of work, so a
 * weight view of the next change waits little (docs/performance.md).
 */
const PREPARE_CHUNK = 200_000;

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
  const { memo, commit } = memoOf(group);
  const sub = { ...cfg, eval: images };
  const all = group.points.weights;
  for (let i = 0; i < all.length;) {
    let j = i;
    let size = 0;
    do size += group.graph.initializers.get(all[j++].initializer)?.data.length ?? 0;
    while (j < all.length && size < PREPARE_CHUNK);
    quantizeWeights(group.graph, { ...group.points, weights: all.slice(i, j) }, sub, memo);
    i = j;
    if (i < all.length) await between();
  }
  commit();
  return true;
}

/**
 * Estimate `cfg` on `images` evaluation images (capped by cfg.eval), through the pipeline
 * loop with the estimate's hooks: prepared groups from `cache` (or rebuilt from `store`),
 * round-to-nearest weights through the group's memo (a reconstruction method is skipped and
 * named in `ptqSkipped`), evaluation in batches of ESTIMATE_BATCH. Throws CANCELLED when
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
  const sub: ExperimentConfig = { ...cfg, eval: images };
  const keys = groupKeys(cfg, rawInputs.dataset.name, images);

  // timing marks: statistics ready, evaluation opened (weights and graph done), session made
  let tStats: number | undefined;
  let tGraph: number | undefined;
  let tSession: number | undefined;
  let group: PreparedGroup | undefined;
  let statsCached = false;
  let memo: ReturnType<typeof memoOf> | undefined;
  const use = (g: PreparedGroup) => {
    group = g;
    memo = memoOf(g);
    tStats = performance.now();
  };
  const groups: GroupSource = {
    // collect moments too, so a later switch to ClipStd reuses this group
    extra: { moments: true },
    get: async (_configs, graph: Graph, inputs, signal) => {
      let g = keys.map((k) => cache.get(k)).find((x) => x !== undefined);
      for (const k of opts.store && !g ? keys : []) {
        const stored = await opts.store!.load(k).catch(() => undefined);
        if (stored?.key === k) {
          g = await rebuildGroup(graph, sub, inputs, { ...stored, stats: new Map(stored.stats) }, signal);
          if (g) {
            cache.set(k, g);
            break;
          }
        }
      }
      if (!g) return undefined;
      statsCached = true;
      use(g);
      // a fresh evaluation memo: the estimate's own evaluations are not kept in the group
      return { ...g, uncorrected: new Map() };
    },
    put: async (_configs, g) => {
      const key = estimateKey(
        cfg.model,
        rawInputs.dataset.name,
        cfg,
        images,
        calibrationNeeds([cfg.aObserver]).histogram,
      );
      cache.set(key, g);
      use(g);
      // kept for the next visit; a full quota only costs that
      await opts.store?.save({ key, stats: [...g.stats], fp32: g.fp32, skipped: g.skipped }).catch(() => undefined);
      while (cache.size > (opts.maxCached ?? 2)) cache.delete(cache.keys().next().value!);
    },
  };
  const e = rawInputs.engine;
  const engine: Engine = {
    kind: e.kind,
    description: e.description,
    createSession: async (model, options) => {
      const session = await e.createSession(model, options);
      // the evaluation's session: sessions made while collecting statistics come before it
      if (tGraph !== undefined) tSession ??= performance.now();
      return session;
    },
  };
  // the memo of the group the loop settles on: the loop asks `groups` before it quantizes
  const nearestWeights: WeightMemo = {
    get: (k) => memo?.memo.get(k),
    set: (k, q) => memo?.memo.set(k, q),
  };
  const [r] = await runPipeline(
    [sub],
    { ...rawInputs, engine },
    {
      signal: opts.signal,
      evalBatch: ESTIMATE_BATCH,
      onProgress: (p) => {
        if (p.stage === 'evaluate') tGraph ??= performance.now();
      },
      hooks: { groups, nearestWeights },
    },
  );
  memo?.commit();
  const tEnd = performance.now();
  const n = group!.evalCrops.length;
  const hits = Math.round(r.quant.top1 * n);
  const agree = Math.round(r.agreement * n);
  // each mark no earlier than the one before, so no part of the split is negative
  const stats = tStats ?? t0;
  const graphAt = Math.max(tGraph ?? stats, stats);
  const sessionAt = Math.max(tSession ?? graphAt, graphAt);
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
      statistics: (stats - t0) / 1000,
      weights: (graphAt - stats) / 1000,
      build: (sessionAt - graphAt) / 1000,
      evaluate: (tEnd - sessionAt) / 1000,
    },
  };
}
