/**
 * From a resolved config, calibration statistics and the quantization points to the
 * numbers that go into the fake-quant graph: fake-quantized weight values and the
 * QParams of every activation point. Pure: no engine, no I/O.
 */
import type { ExperimentConfig } from '../config/types.ts';
import type { Graph } from '../onnx/ir.ts';
import type { ActivationPoint, QuantPoints, WeightPoint } from '../onnx/placement.ts';
import { observeActivation, observeWeight } from '../quant/observers.ts';
import { activationSpec, weightSpec } from '../quant/spec.ts';
import { computeQParams, fakeQuantize } from '../quant/quantizer.ts';
import type { ActivationStats, QParams } from '../quant/types.ts';
import { formatLayerBits } from '../config/layer-bits.ts';

export interface WeightQuant {
  point: WeightPoint;
  qparams: QParams;
  /** fake-quantized values, same shape as the initializer */
  values: Float32Array;
}

export interface ActivationQuant {
  point: ActivationPoint;
  qparams: QParams;
  /** calibrated clipping range (before zero-point/scale rounding) */
  min: number;
  max: number;
}

/** The fields of a config that change weight quantization (cache key for sweeps). */
export function weightKey(cfg: ExperimentConfig): string {
  const ptq =
    cfg.ptq === 'adaround'
      ? [cfg.ptq, cfg.ptqIters, cfg.ptqInputs]
      : cfg.ptq === 'gptq'
        ? [cfg.ptq, cfg.ptqInputs]
        : [];
  return JSON.stringify([
    cfg.wBits,
    cfg.wGranularity,
    cfg.wSymmetric,
    cfg.wNarrowRange,
    cfg.wPowerOfTwo,
    cfg.wObserver,
    cfg.firstLast8bit,
    formatLayerBits(cfg.layerBits ?? {}),
    !!cfg.cle,
    ...ptq,
  ]);
}

/**
 * The fields that determine the uncorrected fake-quant model (weights, activations,
 * placement): configs with the same key differ only in the fixes applied on top.
 */
export function quantKey(cfg: ExperimentConfig): string {
  return JSON.stringify([
    weightKey(cfg),
    cfg.aBits,
    cfg.aSymmetric,
    cfg.aNarrowRange,
    cfg.aPowerOfTwo,
    cfg.aSign,
    cfg.aObserver,
    cfg.placement,
  ]);
}

/**
 * The weight bit width of one layer when it differs from cfg.wBits: a layerBits entry
 * for its node wins; else firstLast8bit keeps the first and last layer at >= 8 bits.
 */
export function weightBitsOf(point: WeightPoint, cfg: ExperimentConfig): number | undefined {
  const own = cfg.layerBits?.[point.node];
  if (own !== undefined) return own;
  return cfg.firstLast8bit && (point.isFirst || point.isLast) ? Math.max(8, cfg.wBits) : undefined;
}

/** Quantized layers by a key of layer and quantizer (a Map will do). */
export interface WeightMemo {
  get(key: string): WeightQuant | undefined;
  set(key: string, q: WeightQuant): unknown;
}

/**
 * Round-to-nearest fake-quantized weights of every weight point. `memo` (layer key → result,
 * for this graph only) skips the layers whose quantizer did not change since an earlier
 * call: a change of the activation settings, or of one layer's bits, costs nothing or one
 * layer. The caller keeps it bounded (see pipeline/estimate.ts).
 */
export function quantizeWeights(
  graph: Graph,
  points: QuantPoints,
  cfg: ExperimentConfig,
  memo?: WeightMemo,
): WeightQuant[] {
  return points.weights.map((point) => {
    const spec = weightSpec(cfg, point.axis, weightBitsOf(point, cfg));
    const key = memo && JSON.stringify([point.initializer, cfg.wObserver, spec]);
    const known = key !== undefined ? memo?.get(key) : undefined;
    if (known) return known;
    const init = graph.initializers.get(point.initializer)!;
    const data = init.data as Float32Array;
    const range = observeWeight(cfg.wObserver, data, init.dims, spec);
    const qparams = computeQParams(range, spec);
    const q = { point, qparams, values: fakeQuantize(data, init.dims, qparams) };
    if (key !== undefined) memo?.set(key, q);
    return q;
  });
}

export function quantizeActivations(
  points: QuantPoints,
  stats: Map<string, ActivationStats>,
  cfg: ExperimentConfig,
): ActivationQuant[] {
  const active = points.activations.filter((p) => includeActivation(p, cfg));
  return active.map((point) => {
    const s = stats.get(point.tensor);
    if (!s || s.batches.length === 0) throw new Error(`no calibration statistics for ${point.tensor}`);
    const nonNegative = Math.min(...s.batches.map((b) => b.min)) >= 0;
    const bits =
      cfg.firstLast8bit && (point.firstLayerInput || point.lastLayerInput) ? Math.max(8, cfg.aBits) : undefined;
    const spec = activationSpec(cfg, nonNegative, bits);
    const range = observeActivation(cfg.aObserver, s, spec);
    const qparams = computeQParams(range, spec);
    return { point, qparams, min: range.min[0], max: range.max[0] };
  });
}

/**
 * Whether a candidate activation point is quantized under this config's placement
 * rules. Points are found for the union of rules of a sweep, then filtered per config.
 */
export function includeActivation(p: ActivationPoint, cfg: ExperimentConfig): boolean {
  return p.rules.some((rule) => cfg.placement[rule]);
}
