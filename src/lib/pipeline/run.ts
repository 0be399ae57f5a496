/**
 * The complete experiment pipeline as the CLI, the worker, the scripts and the tests
 * call it: experiment/run.ts with the analysis layer's stages (fixes, per-layer
 * analysis) and the reconstruction stage (ptq/) plugged in. Higher than both, so neither has to import the other; later
 * stages (advanced PTQ, export) plug in here the same way.
 */
import { ANALYSIS_STAGES } from '../analysis/stages.ts';
import { PTQ_STAGES } from '../ptq/stage.ts';
import type { PipelineStages } from '../experiment/stages.ts';
import {
  configWeights as configWeightsWith,
  prepareGroup as prepareGroupWith,
  runConfig as runConfigWith,
  runPipeline,
  type PipelineOptions,
  type PreparedGroup,
} from '../experiment/run.ts';
import type { RunExperiments, RunInputs } from '../experiment/types.ts';
import type { Engine } from '../engine/types.ts';
import type { ExperimentConfig } from '../config/types.ts';
import type { WeightQuant } from '../experiment/quantize.ts';

export {
  DEFAULT_TUNING,
  resolveModelInput,
  type PipelineTuning,
  type PreparedGroup,
  type PipelineOptions,
} from '../experiment/run.ts';

/** Every stage this build knows, in the order they run. */
export const DEFAULT_STAGES: PipelineStages = { ...ANALYSIS_STAGES, ...PTQ_STAGES };

const withStages = <T extends PipelineOptions>(opts: T): T => ({ ...opts, stages: opts.stages ?? DEFAULT_STAGES });

/** Runs every config (see experiment/run.ts runPipeline) with fixes and analysis available. */
export const runExperiments: RunExperiments = (configs, inputs, opts = {}) =>
  runPipeline(configs, inputs, withStages(opts));

/** runConfig of experiment/run.ts with the default stages. */
export function runConfig(
  engine: Engine,
  group: PreparedGroup,
  cfg: ExperimentConfig,
  inputs: RunInputs,
  weights: WeightQuant[],
  opts: PipelineOptions,
): ReturnType<typeof runConfigWith> {
  return runConfigWith(engine, group, cfg, inputs, weights, withStages(opts));
}

/** prepareGroup of experiment/run.ts with the default stages (cross-layer equalization). */
export function prepareGroup(
  ...[base, configs, inputs, opts]: Parameters<typeof prepareGroupWith>
): ReturnType<typeof prepareGroupWith> {
  return prepareGroupWith(base, configs, inputs, withStages(opts));
}

/** configWeights of experiment/run.ts with the default stages (AdaRound, GPTQ). */
export function configWeights(
  ...[engine, group, cfg, inputs, opts]: Parameters<typeof configWeightsWith>
): ReturnType<typeof configWeightsWith> {
  return configWeightsWith(engine, group, cfg, inputs, withStages(opts));
}
