/**
 * Types of the quantization math. Pure data: no ORT, no DOM, no graph types.
 */

// The name lists live in config/names.ts (written once for every layer); re-exported here
// so quantization code keeps importing its vocabulary from one place.
export {
  BACKEND_NAMES,
  OBSERVER_NAMES,
  type BackendName,
  type Granularity,
  type ObserverName,
} from '../config/names.ts';
import type { Granularity } from '../config/names.ts';

/**
 * How one tensor is quantized. Integer range:
 * - signed:   [-2^(b-1), 2^(b-1)-1], or [-(2^(b-1)-1), 2^(b-1)-1] with narrowRange (TensorRT)
 * - unsigned: [0, 2^b-1]
 */
export interface QuantSpec {
  bits: number; // 2..16
  signed: boolean;
  symmetric: boolean;
  narrowRange: boolean;
  granularity: Granularity;
  /** channel axis for per-channel (weights: 0 for Conv/Gemm transB, 1 for MatMul [in,out]) */
  axis: number;
  powerOfTwo: boolean;
}

/** Quantization parameters; arrays have length 1 for per-tensor, C for per-channel. */
export interface QParams {
  scale: Float32Array;
  zeroPoint: Int32Array;
  qmin: number;
  qmax: number;
  /** channel axis when per-channel, -1 for per-tensor */
  axis: number;
}

/** A clipping range chosen by an observer; arrays of length 1 (per-tensor) or C. */
export interface Range {
  min: Float32Array;
  max: Float32Array;
}

/**
 * Statistics of one activation tensor over one calibration batch, computed in the
 * graph (min/max/sums) or in JS (histogram). Everything an activation observer needs.
 */
export interface BatchStats {
  min: number;
  max: number;
  /** sum of x and of x^2 over all elements, and element count (for ClipStd) */
  sum: number;
  sumSq: number;
  count: number;
  /** counts over `bins` equal bins spanning [hist.lo, hist.hi] of ActivationStats */
  hist?: Float64Array;
}

/** All calibration statistics of one activation tensor. */
export interface ActivationStats {
  batches: BatchStats[];
  /** histogram support shared by all batches (global min/max from a first pass) */
  histLo?: number;
  histHi?: number;
}
