/**
 * The one pipeline loop. Every caller runs experiments through `runPipeline`: the app's run
 * and analysed run (worker), the background estimate, the lessons runner, the CLI and the
 * bench scripts. What differs between them are hooks (reuse prepared groups, round weights
 * through a memo, analyse some configs, keep the layer-detail context), never a different
 * set of steps, so a config option is honoured the same way everywhere.
 *
 * Steps: parse → check the model's input → per group of configs sharing a data split:
 * prepare (crops, FP32, equalization, calibration statistics; prepare.ts) → per config:
 * weights (round-to-nearest or reconstruction), activations, fake-quant graph, fixes,
 * evaluation, analysis (config-run.ts). A sweep reuses the group's FP32 outputs and
 * statistics, and weights across configs that quantize weights the same way.
 */
import { throwIfAborted } from '../util/errors.ts';
import type { ExperimentConfig } from '../config/types.ts';
import { configHash } from '../config/hash.ts';
import type { Graph } from '../onnx/ir.ts';
import { parseModel } from '../onnx/model.ts';
import {
  DEFAULT_TUNING,
  resolveModelInput,
  withConfigModel,
  withEvalBatch,
  type PipelineTuning,
} from '../experiment/inputs.ts';
import { quantKey, weightKey, type WeightMemo } from '../experiment/quantize.ts';
import { usesEngineGradients } from '../config/names.ts';
import type { ExperimentResult, RunInputs, RunOptions } from '../experiment/types.ts';
import type { LayerDetailContext } from '../analysis/detail.ts';
import { configWeights, runConfig, type ConfigWeights } from './config-run.ts';
import {
  groupKey,
  prepareGroup,
  schemeFor,
  type ExtraStatistics,
  type PreparedGroup,
  type SchemeSource,
} from './prepare.ts';

/** Analysis images when RunOptions.analyze does not say (the first ones of the evaluation split). */
export const DEFAULT_ANALYSIS_IMAGES = 64;

/** Where prepared groups come from and go (the background estimate's cache and stored statistics). */
export interface GroupSource {
  /** a prepared group that serves these configs, or undefined to prepare one */
  get(
    configs: ExperimentConfig[],
    base: Graph,
    inputs: RunInputs,
    signal?: AbortSignal,
  ): Promise<PreparedGroup | undefined>;
  /** a group this run prepared */
  put(configs: ExperimentConfig[], group: PreparedGroup): void | Promise<void>;
  /** what to collect beyond the configs' needs, so that later configs can reuse the group */
  extra?: ExtraStatistics;
}

/** What differs between callers of the one loop. */
export interface PipelineHooks {
  /** which configs to analyse, on how many images (default: RunOptions.analyze, for every config) */
  analyzeFor?: (cfg: ExperimentConfig) => { images: number } | undefined;
  /** receives what the layer detail of each analysed config needs (the worker keeps the last one) */
  keepContext?: (result: ExperimentResult, context: LayerDetailContext) => void;
  /** reuse prepared groups across calls */
  groups?: GroupSource;
  /**
   * round every config's weights to nearest through this memo and skip reconstruction: the
   * background estimate, which reports the skipped method in its answer
   */
  nearestWeights?: WeightMemo;
  /**
   * the imported scheme that configs naming it (config importedScheme) re-simulate: its
   * graph, points and fixed grids replace the parent's own (imported/resimulate.ts)
   */
  scheme?: SchemeSource;
}

const parsed = new WeakMap<Uint8Array, Graph>();

/**
 * The graph of a model's bytes, parsed once per byte array (the background estimate runs the
 * loop on every settled change). The pipeline never changes it: every step copies.
 */
export function parsedModel(bytes: Uint8Array): Graph {
  let g = parsed.get(bytes);
  if (!g) parsed.set(bytes, (g = parseModel(bytes)));
  return g;
}

/** RunOptions plus batch tuning and the hooks. */
export type PipelineOptions = RunOptions & { tuning?: PipelineTuning; hooks?: PipelineHooks };

/** The analysis RunOptions.analyze asks for, if any. */
function analysisOf(analyze: RunOptions['analyze']): { images: number } | undefined {
  if (!analyze) return undefined;
  return { images: (typeof analyze === 'object' && analyze.images) || DEFAULT_ANALYSIS_IMAGES };
}

/**
 * Runs every config, sharing the FP32 evaluation and the calibration statistics within a
 * group of configs with the same data split, and weights within a group. Results come in
 * the configs' order. Throws the pipeline's QpErrors (CANCELLED when the signal aborts).
 */
export async function runPipeline(
  configs: ExperimentConfig[],
  rawInputs: RunInputs,
  opts: PipelineOptions = {},
): Promise<ExperimentResult[]> {
  const hooks = opts.hooks ?? {};
  const base = parsedModel(rawInputs.modelBytes);
  const baseTuning = withEvalBatch(opts.tuning ?? DEFAULT_TUNING, opts.evalBatch);
  const analyzeFor = hooks.analyzeFor ?? (() => analysisOf(opts.analyze));
  const groups = new Map<string, ExperimentConfig[]>();
  for (const c of configs) {
    const k = groupKey(c);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(c);
  }
  const results = new Map<ExperimentConfig, ExperimentResult>();
  for (const group of groups.values()) {
    // the model's input as the graph declares it, with the group's preprocessing
    const { inputs, tuning } = resolveModelInput(base, withConfigModel(rawInputs, group[0]), baseTuning);
    const step = { tuning, signal: opts.signal, onProgress: opts.onProgress };
    // refuse a config whose scheme is missing before any work, even for a kept group
    const scheme = schemeFor(group[0], hooks.scheme);
    let prepared = await hooks.groups?.get(group, base, inputs, opts.signal);
    if (!prepared) {
      prepared = await prepareGroup(base, group, inputs, { ...step, extra: hooks.groups?.extra, scheme });
      await hooks.groups?.put(group, prepared);
    }
    const shared = prepared.seconds / group.length;
    const weightCache = new Map<string, ConfigWeights>();
    for (const cfg of group) {
      throwIfAborted(opts.signal);
      const t0 = performance.now();
      opts.onProgress?.({
        stage: 'quantize',
        done: 0,
        total: 1,
        message: `Quantizing weights for ${cfg.backend} W${cfg.wBits}A${cfg.aBits}`,
      });
      // a reconstruction on the quantized model's inputs, or one that learns step sizes, also
      // depends on the activation quantizers: W4A4 and W4A8 must not share it
      const wk =
        cfg.ptq !== 'none' && (cfg.ptqInputs === 'quantized-prefix' || usesEngineGradients(cfg))
          ? quantKey(cfg)
          : weightKey(cfg);
      let w = weightCache.get(wk);
      if (!w) {
        w = await configWeights(inputs.engine, prepared, cfg, inputs, { ...step, nearest: hooks.nearestWeights });
        weightCache.set(wk, w);
      }
      let context: LayerDetailContext | undefined;
      const r = await runConfig(inputs.engine, prepared, cfg, inputs, w.weights, {
        ...step,
        analyze: analyzeFor(cfg),
        onQuantized: opts.onQuantized,
        keepContext: hooks.keepContext && ((c) => (context = c)),
        activations: w.activations,
      });
      const result: ExperimentResult = {
        ...r,
        ...(w.ptq ? { ptq: w.ptq } : {}),
        configHash: await configHash(cfg),
        seconds: shared + (performance.now() - t0) / 1000,
        createdAt: new Date().toISOString(),
      };
      if (context) hooks.keepContext?.(result, context);
      results.set(cfg, result);
      await opts.onResult?.(result);
    }
  }
  return configs.map((c) => results.get(c)!);
}
