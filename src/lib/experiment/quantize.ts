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
import { computeQParams, fakeQuantize, qRange } from '../quant/quantizer.ts';
import type { ActivationStats, QParams, QuantSpec, Range } from '../quant/types.ts';
import { formatLayerBits } from '../config/layer-bits.ts';
import { learnsActivationRanges } from '../config/names.ts';
import { QpError } from '../util/errors.ts';

/**
 * Fixed grids and ranges of an imported quantized model, in the layout of the graph being
 * quantized (src/lib/imported/resimulate.ts makes them). With the observer 'imported' a
 * quantizer takes them instead of observing: the grid itself when the config's spec for
 * that tensor is the grid's (bits, sign, symmetry, granularity, narrow range), otherwise the
 * real range the grid represents, re-gridded to the config's spec.
 */
export interface FixedQuant {
  /** weight initializer → its imported grid */
  weights: ReadonlyMap<string, QParams>;
  /** activation tensor → its imported quantizer */
  activations: ReadonlyMap<string, QParams>;
}

export interface WeightQuant {
  point: WeightPoint;
  qparams: QParams;
  /** fake-quantized values, same shape as the initializer */
  values: Float32Array;
}

export interface ActivationQuant {
  point: ActivationPoint;
  qparams: QParams;
  /**
   * clipping range (before zero-point/scale rounding): calibration's, or, where a
   * reconstruction learned the step size, the learned grid's range
   */
  min: number;
  max: number;
  /** the calibrated quantizer's step and range, kept where a reconstruction learned the step size */
  calibrated?: { scale: number; min: number; max: number };
}

/**
 * The fields of a config that change weight quantization (cache key for sweeps). With learned
 * activation ranges the reconstruction also changes activation step sizes; quantKey includes
 * this key, so those configs never share an uncorrected evaluation either.
 */
export function weightKey(cfg: ExperimentConfig): string {
  const ptq =
    cfg.ptq === 'adaround'
      ? [cfg.ptq, cfg.ptqIters, cfg.ptqInputs, ...(learnsActivationRanges(cfg) ? ['learned ranges'] : [])]
      : cfg.ptq === 'gptq'
        ? [cfg.ptq, cfg.ptqInputs]
        : cfg.ptq === 'brecq' || cfg.ptq === 'qdrop'
          ? [cfg.ptq, cfg.ptqIters, cfg.ptqInputs, learnsActivationRanges(cfg), cfg.ptq === 'qdrop' ? cfg.ptqDrop : 0]
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
    ...(cfg.importedScheme && cfg.importedScheme !== 'none' ? [cfg.importedScheme] : []),
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
  fixed?: FixedQuant,
): WeightQuant[] {
  return points.weights.map((point) => {
    const spec = weightSpec(cfg, point.axis, weightBitsOf(point, cfg));
    const key = memo && JSON.stringify([point.initializer, cfg.wObserver, cfg.importedScheme, spec]);
    const known = key !== undefined ? memo?.get(key) : undefined;
    if (known) return known;
    const init = graph.initializers.get(point.initializer)!;
    const data = init.data as Float32Array;
    const qparams =
      cfg.wObserver === 'imported'
        ? fromGrid(fixedFor(fixed?.weights, point.initializer, 'weights'), spec, init.dims[point.axis])
        : computeQParams(observeWeight(cfg.wObserver, data, init.dims, spec), spec);
    const q = { point, qparams, values: fakeQuantize(data, init.dims, qparams) };
    if (key !== undefined) memo?.set(key, q);
    return q;
  });
}

export function quantizeActivations(
  points: QuantPoints,
  stats: Map<string, ActivationStats>,
  cfg: ExperimentConfig,
  fixed?: FixedQuant,
): ActivationQuant[] {
  const active = points.activations.filter((p) => includeActivation(p, cfg));
  return active.map((point) => {
    if (cfg.aObserver === 'imported') {
      const grid = fixedFor(fixed?.activations, point.tensor, 'activations');
      const r = gridRange(grid, 1);
      const bits =
        cfg.firstLast8bit && (point.firstLayerInput || point.lastLayerInput) ? Math.max(8, cfg.aBits) : undefined;
      const qparams = fromGrid(grid, activationSpec(cfg, r.min[0] >= 0, bits), 1);
      return { point, qparams, min: r.min[0], max: r.max[0] };
    }
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

function fixedFor(m: ReadonlyMap<string, QParams> | undefined, name: string, what: string): QParams {
  const g = m?.get(name);
  if (!g)
    throw new QpError(
      'CONFIG_INVALID',
      `The "imported" observer needs the imported model's ${what} grid for "${name}", and the imported scheme has none. Load the quantized model the config names (importedScheme), or choose another observer.`,
    );
  return g;
}

/**
 * The real range a grid represents per channel, [(qmin − zp)·s, (qmax − zp)·s]; with
 * `channels` 1 the union over channels (a per-channel grid seen per tensor), with more a
 * per-tensor grid repeated per channel.
 */
export function gridRange(grid: QParams, channels: number): Range {
  const C = grid.scale.length;
  const lo = Array.from(grid.scale, (s, c) => Math.fround((grid.qmin - grid.zeroPoint[c]) * s));
  const hi = Array.from(grid.scale, (s, c) => Math.fround((grid.qmax - grid.zeroPoint[c]) * s));
  if (channels === 1 || C === channels) {
    if (channels === 1 && C > 1)
      return { min: Float32Array.of(Math.min(...lo)), max: Float32Array.of(Math.max(...hi)) };
    return { min: Float32Array.from(lo), max: Float32Array.from(hi) };
  }
  return { min: new Float32Array(channels).fill(lo[0]), max: new Float32Array(channels).fill(hi[0]) };
}

/**
 * Whether a spec describes this grid, so the grid is used as it is: same bits and sign,
 * per-channel on the same axis or per-tensor as the grid, zero point 0 where the spec is
 * symmetric, power-of-two scales where it asks for them. A narrow range ([-127, 127]) and the
 * full one differ only in the most negative code, so either spec takes the grid (with the
 * spec's own integer range).
 */
export function specIsGrid(grid: QParams, spec: QuantSpec): boolean {
  const { qmin, qmax } = qRange(spec);
  if (qmax !== grid.qmax || Math.abs(qmin - grid.qmin) > (qmin < 0 ? 1 : 0)) return false;
  if ((spec.granularity === 'per-channel') !== grid.axis >= 0) return false;
  if (grid.axis >= 0 && spec.axis !== grid.axis) return false;
  if (spec.symmetric && !grid.zeroPoint.every((z) => z === 0)) return false;
  if (spec.powerOfTwo && !grid.scale.every((s) => Number.isInteger(Math.log2(s)))) return false;
  return true;
}

/** The grid as it is when the spec is the grid's, else the grid's range re-gridded to the spec. */
function fromGrid(grid: QParams, spec: QuantSpec, channels: number): QParams {
  if (specIsGrid(grid, spec)) return { ...grid, ...qRange(spec) };
  return computeQParams(gridRange(grid, spec.granularity === 'per-channel' ? channels : 1), spec);
}
