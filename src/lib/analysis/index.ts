/**
 * Public surface of the "why does accuracy drop" analysis (issue 4): per-layer error,
 * BN statistic drift, fixes and histogram data. See each module's header.
 */
export type * from './types.ts';
export { analyzeQuantization, type AnalysisInputs, type AnalysisOutput } from './analyze.ts';
export { analyzeExperiment, type AnalyzedExperiment } from './experiment.ts';
export {
  layerDetail,
  type LayerDetail,
  type LayerDetailContext,
  type WeightHistogram,
  type ActivationHistogram,
} from './detail.ts';
export { applyFixes, type FixInputs, type FixOptions } from './fixes.ts';
