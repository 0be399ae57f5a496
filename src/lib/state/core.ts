/**
 * The core values and types the components use, re-exported: components reach the core
 * only through src/lib/state (enforced by .dependency-cruiser.cjs), so the UI depends
 * on one narrow surface instead of the whole library.
 */
export { configLabel } from '../experiment/report.ts';
export { MODEL_REGISTRY } from '../models/registry.ts';
export type { Accuracy } from '../protocol/accuracy.ts';
export type { ExperimentResult } from '../protocol/results.ts';
export type { EnginePref } from '../protocol/api.ts';
export type { ErrorInfo } from '../util/errors.ts';
export { GLOSSARY, glossaryEntry } from '../help/glossary.ts';
export {
  gridLines,
  gridRange,
  histogram,
  paramsFromRange,
  paramsFromScale,
  quantizationError,
} from '../intro/quant-widget.ts';
export type { TensorSample } from '../intro/first-conv.ts';
export type { QParams } from '../quant/types.ts';
export { LESSONS } from '../../lessons/index.ts';
