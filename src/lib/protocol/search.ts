/**
 * The accuracy-aware search and the size-versus-top-1 front as the worker runs them for the
 * app (QuantApi.searchPrecision): what is asked, the progress, and what comes back. Pure
 * types; src/lib/search computes the numbers.
 */
import type { ExperimentConfig } from '../config/types.ts';

export interface SearchRequest {
  /** largest allowed top-1 drop, in points (the accuracy-aware search) */
  maxDrop: number;
  /** evaluation images that rank the layers (the first ones of the evaluation split) */
  rankImages: number;
  /**
   * evaluation images the budget is checked on (the first ones of the evaluation split;
   * default all): the searched configs carry this count as their `eval`
   */
  checkImages?: number;
  /**
   * try to quantize each kept layer again afterwards (one validation on every evaluation
   * image per kept layer: the longest part of a search on a large model; default false)
   */
  prune?: boolean;
  /** also the size-versus-top-1 front over these per-layer weight bit widths (none: no front) */
  paretoBits?: number[];
  /** configurations of the front evaluated on every evaluation image */
  paretoPoints?: number;
}

export interface SearchProgress {
  /** evaluations done and planned (planned grows when the pruning pass starts) */
  done: number;
  total: number;
  message: string;
}

export interface SearchRankedLayer {
  layer: string;
  params: number;
  bits: number;
  /** top-1 gained on the ranking images when only this layer is kept (fraction) */
  gain: number;
  agreementGain: number;
}

export interface SearchControl {
  maxDrop: number;
  met: boolean;
  kept: string[];
  highBits: number;
  top1: number;
  drop: number;
  sizeBits: number;
  /** every layer at the preset's bits */
  baseTop1: number;
  baseSizeBits: number;
  config: ExperimentConfig;
  /** most costly first (empty when the preset already met the budget) */
  ranking: SearchRankedLayer[];
  evaluations: number;
}

export interface SearchFrontPoint {
  config: ExperimentConfig;
  sizeBits: number;
  top1: number;
  predictedCost: number;
  front: boolean;
}

export interface SearchFront {
  bits: number[];
  points: SearchFrontPoint[];
  /** every layer at the preset's bits, on the evaluation images */
  uniform: { top1: number; sizeBits: number };
  evaluations: number;
}

export interface SearchOutcome {
  /** the config searched from (its `eval` the budget-check images) */
  base: ExperimentConfig;
  fp32: { top1: number; images: number };
  rankImages: number;
  /** weight layers of the model */
  layers: number;
  control: SearchControl;
  front?: SearchFront;
  evaluations: number;
  seconds: number;
  engine: string;
}
