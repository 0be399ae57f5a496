/**
 * The entry point the browser worker uses for the analysis views: run one config with per-layer analysis and keep what `layerDetail`
 * needs, so selecting a layer costs at most one small fetch. Same pipeline and numbers
 * as runExperiments; this module only keeps the intermediate state around.
 */
import type { ExperimentConfig } from '../config/types.ts';
import { configHash } from '../config/hash.ts';
import { quantizeActivations, quantizeWeights } from '../experiment/quantize.ts';
import {
  DEFAULT_TUNING,
  prepareGroup,
  resolveModelInput,
  runConfig,
  withEvalBatch,
  type PipelineTuning,
} from '../experiment/run.ts';
import { ANALYSIS_STAGES } from './stages.ts';
import type { ExperimentResult, RunInputs, RunOptions } from '../experiment/types.ts';
import { parseModel } from '../onnx/model.ts';
import { layerDetail, type LayerDetail, type LayerDetailContext } from './detail.ts';

export interface AnalyzedExperiment {
  /** the run's result with `layers` and `analysis` filled (and `beforeFixes`/`fixes` when a fix is on) */
  result: ExperimentResult;
  /** state for layerDetail; holds the graph and calibration crops (tens of MB): drop it when done */
  context: LayerDetailContext;
  /** histogram data of one layer (see layerDetail) */
  detail(layer: string, opts?: { bins?: number; sampleImages?: number }): Promise<LayerDetail>;
}

/**
 * Runs `config` with analysis on. `opts.analyze` may give the number of analysis images
 * (default 64). Throws what runExperiments throws.
 */
export async function analyzeExperiment(
  config: ExperimentConfig,
  rawInputs: RunInputs,
  opts: RunOptions & { tuning?: PipelineTuning } = {},
): Promise<AnalyzedExperiment> {
  const t0 = performance.now();
  const base = parseModel(rawInputs.modelBytes);
  const { inputs, tuning } = resolveModelInput(
    base,
    rawInputs,
    withEvalBatch(opts.tuning ?? DEFAULT_TUNING, opts.evalBatch),
  );
  const o = { ...opts, tuning, analyze: opts.analyze || true, stages: ANALYSIS_STAGES };
  const group = await prepareGroup(base, [config], inputs, o);
  const weights = quantizeWeights(group.graph, group.points, config);
  const r = await runConfig(inputs.engine, group, config, inputs, weights, o);
  const result: ExperimentResult = {
    ...r,
    configHash: await configHash(config),
    seconds: (performance.now() - t0) / 1000,
    createdAt: new Date().toISOString(),
  };
  const context: LayerDetailContext = {
    engine: inputs.engine,
    graph: group.graph,
    points: group.points,
    weights,
    activations: quantizeActivations(group.points, group.stats, config),
    stats: group.stats,
    calibCrops: group.calibCrops,
    spec: inputs.model.preprocess,
  };
  return { result, context, detail: (layer, d) => layerDetail(context, layer, d) };
}
