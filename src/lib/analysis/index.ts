/**
 * Public surface of the "why does accuracy drop" analysis: per-layer error,
 * BN statistic drift and histogram data. See each module's header.
 */
export type * from './types.ts';
export { analyzeQuantization, type AnalysisInputs, type AnalysisOutput } from './analyze.ts';
export {
  layerDetail,
  type LayerDetail,
  type LayerDetailContext,
  type WeightHistogram,
  type ActivationHistogram,
} from './detail.ts';
