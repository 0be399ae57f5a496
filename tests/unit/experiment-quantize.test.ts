/**
 * The quantize stage (experiment/quantize.ts), pure: hand-made calibration statistics and
 * quantization points in, QParams out.
 * - the activation sign under aSign 'auto' (OpenVINO) follows the whole calibrated range:
 *   unsigned only when every calibration batch is non-negative (a wrong choice here once
 *   took OpenVINO W8A8 to 0% with every test passing);
 * - placement filtering keeps a point when any of its rules is on;
 * - firstLast8bit keeps the first and the last layer's weights and inputs at 8 bits;
 * - weightKey / quantKey change exactly with the fields that change weights / the
 *   uncorrected model.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import {
  includeActivation,
  quantKey,
  quantizeActivations,
  quantizeWeights,
  weightKey,
} from '../../src/lib/experiment/quantize.ts';
import type { ActivationPoint, QuantPoints } from '../../src/lib/onnx/placement.ts';
import { findQuantPoints } from '../../src/lib/onnx/placement.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import type { ActivationStats } from '../../src/lib/quant/types.ts';
import { smallCnn } from '../support/onnx-helpers.ts';

const point = (tensor: string, rules: ActivationPoint['rules'], first = false, last = false): ActivationPoint => ({
  tensor,
  consumers: [],
  reasons: [],
  rules,
  firstLayerInput: first,
  lastLayerInput: last,
});
const batch = (min: number, max: number) => ({ min, max, sum: NaN, sumSq: NaN, count: 100 });
const points = (acts: ActivationPoint[]): QuantPoints =>
  ({ activations: acts, weights: [], unquantizedOps: [] }) as unknown as QuantPoints;

describe('activation sign under aSign auto', () => {
  const cfg = resolveConfig({ backend: 'openvino', aObserver: 'minmax', firstLast8bit: false });
  const stats = new Map<string, ActivationStats>([
    ['relu', { batches: [batch(0, 4), batch(0, 6)] }],
    ['mixed', { batches: [batch(0.5, 4), batch(-1, 3), batch(0.2, 5)] }], // one batch dips below zero
  ]);

  it('is unsigned only when every calibration batch is non-negative', () => {
    expect(cfg.aSign).toBe('auto');
    const [relu, mixed] = quantizeActivations(points([point('relu', ['conv']), point('mixed', ['conv'])]), stats, cfg);
    expect([relu.qparams.qmin, relu.qparams.qmax]).toEqual([0, 255]);
    expect(relu.qparams.zeroPoint[0]).toBe(0);
    expect(relu.qparams.scale[0]).toBeCloseTo(6 / 255, 7);
    expect(mixed.qparams.qmin).toBeLessThan(0);
    expect([mixed.min, mixed.max]).toEqual([-1, 5]);
  });

  it('follows an explicit sign whatever the range', () => {
    const signed = quantizeActivations(
      points([point('relu', ['conv'])]),
      stats,
      resolveConfig({ ...cfg, aSign: 'signed' }),
    );
    expect(signed[0].qparams.qmin).toBeLessThan(0);
  });
});

describe('placement filtering', () => {
  const on = (rules: Partial<ExperimentConfig['placement']>) =>
    resolveConfig({
      backend: 'tensorrt',
      placement: { conv: false, gemm: false, add: false, pool: false, concat: false, modelInput: false, ...rules },
    });
  it('keeps a point found by several rules when any one of them is on', () => {
    const p = point('t', ['add', 'pool']);
    expect(includeActivation(p, on({ pool: true }))).toBe(true);
    expect(includeActivation(p, on({ add: true }))).toBe(true);
    expect(includeActivation(p, on({ conv: true, concat: true }))).toBe(false);
  });
});

describe('firstLast8bit', () => {
  it('keeps the first and last weighted layers and their inputs at 8 bits under W4A4', () => {
    const g = smallCnn({ seed: 4 });
    const qp = findQuantPoints(g, { conv: true, gemm: true, add: true, pool: true, concat: true, modelInput: true });
    const cfg = resolveConfig({
      backend: 'academic',
      wBits: 4,
      aBits: 4,
      firstLast8bit: true,
      wObserver: 'minmax',
      aObserver: 'minmax',
      wSymmetric: true,
      wNarrowRange: false,
    });
    const w = quantizeWeights(g, qp, cfg);
    const range = w.map((x) => x.qparams.qmax - x.qparams.qmin);
    expect(range[0]).toBe(255);
    expect(range[range.length - 1]).toBe(255);
    for (const r of range.slice(1, -1)) expect(r).toBe(15);
    const stats = new Map(
      qp.activations.map((p): [string, ActivationStats] => [p.tensor, { batches: [batch(-1, 2)] }]),
    );
    const acts = quantizeActivations(qp, stats, cfg);
    for (const a of acts) {
      const eight = a.point.firstLayerInput || a.point.lastLayerInput;
      expect(a.qparams.qmax - a.qparams.qmin).toBe(eight ? 255 : 15);
    }
    expect(acts.some((a) => a.point.lastLayerInput)).toBe(true);
  });
});

describe('weight and quantization keys', () => {
  const base = resolveConfig({ backend: 'tensorrt' });
  const weightFields: Partial<ExperimentConfig>[] = [
    { wBits: 4 },
    { wGranularity: base.wGranularity === 'per-channel' ? 'per-tensor' : 'per-channel' },
    { wSymmetric: !base.wSymmetric },
    { wNarrowRange: !base.wNarrowRange },
    { wPowerOfTwo: !base.wPowerOfTwo },
    { wObserver: 'mse' },
    { firstLast8bit: !base.firstLast8bit },
  ];
  const actFields: Partial<ExperimentConfig>[] = [
    { aBits: 4 },
    { aSymmetric: !base.aSymmetric },
    { aNarrowRange: !base.aNarrowRange },
    { aPowerOfTwo: !base.aPowerOfTwo },
    { aSign: 'auto' },
    { aObserver: 'kl' },
    { placement: { ...base.placement, add: !base.placement.add } },
  ];
  const fixFields: Partial<ExperimentConfig>[] = [{ biasCorrection: true }, { bnReestimate: true }];

  it('weight fields change both keys', () => {
    for (const f of weightFields) {
      const c = resolveConfig({ ...base, ...f });
      expect(weightKey(c), JSON.stringify(f)).not.toBe(weightKey(base));
      expect(quantKey(c), JSON.stringify(f)).not.toBe(quantKey(base));
    }
  });
  it('activation fields change the quantization key only', () => {
    for (const f of actFields) {
      const c = resolveConfig({ ...base, ...f });
      expect(weightKey(c), JSON.stringify(f)).toBe(weightKey(base));
      expect(quantKey(c), JSON.stringify(f)).not.toBe(quantKey(base));
    }
  });
  it('fixes change neither key (the uncorrected model is shared)', () => {
    for (const f of fixFields) {
      const c = resolveConfig({ ...base, ...f });
      expect(quantKey(c)).toBe(quantKey(base));
      expect(weightKey(c)).toBe(weightKey(base));
    }
  });
});

describe('quantizeWeights with a memo', () => {
  const g = smallCnn({ seed: 5 });
  const qp = findQuantPoints(g, { conv: true, gemm: true, add: true, pool: true, concat: true, modelInput: true });
  const base = resolveConfig({ backend: 'tensorrt', wObserver: 'minmax' });
  /** a memo that counts the layers it had to quantize */
  const counting = () => {
    const m = new Map<string, ReturnType<typeof quantizeWeights>[number]>();
    let fresh = 0;
    return {
      memo: {
        get: (k: string) => m.get(k),
        set: (k: string, q: ReturnType<typeof quantizeWeights>[number]) => (fresh++, m.set(k, q)),
      },
      fresh: () => fresh,
    };
  };

  it('gives what quantizing from scratch gives, whichever weight field changed since the memo was filled', () => {
    const variants: Partial<ExperimentConfig>[] = [
      { wBits: 4 },
      { wBits: 6 },
      { wGranularity: 'per-tensor' },
      { wSymmetric: !base.wSymmetric },
      { wNarrowRange: !base.wNarrowRange },
      { wPowerOfTwo: !base.wPowerOfTwo },
      { wObserver: 'mse' },
      { firstLast8bit: !base.firstLast8bit },
      { layerBits: { [qp.weights[1].node]: 3 } },
    ];
    for (const v of variants) {
      const { memo } = counting();
      quantizeWeights(g, qp, base, memo);
      const cfg = resolveConfig({ ...base, ...v });
      const memoed = quantizeWeights(g, qp, cfg, memo);
      const plain = quantizeWeights(g, qp, cfg);
      expect(memoed.length).toBe(plain.length);
      memoed.forEach((w, i) => {
        expect(Array.from(w.values), `${JSON.stringify(v)} layer ${i}`).toEqual(Array.from(plain[i].values));
        expect(Array.from(w.qparams.scale)).toEqual(Array.from(plain[i].qparams.scale));
        expect([w.qparams.qmin, w.qparams.qmax]).toEqual([plain[i].qparams.qmin, plain[i].qparams.qmax]);
      });
    }
  });

  it('re-quantizes nothing after an activation-side change and one layer after a change of its bits', () => {
    const c = counting();
    const first = quantizeWeights(g, qp, base, c.memo);
    expect(c.fresh()).toBe(qp.weights.length);
    const acts = quantizeWeights(g, qp, resolveConfig({ ...base, aBits: 4, aObserver: 'mse' }), c.memo);
    expect(c.fresh()).toBe(qp.weights.length);
    acts.forEach((w, i) => expect(w).toBe(first[i]));
    const one = quantizeWeights(g, qp, resolveConfig({ ...base, layerBits: { [qp.weights[2].node]: 4 } }), c.memo);
    expect(c.fresh()).toBe(qp.weights.length + 1);
    // 4-bit codes (14 or 15 steps with a narrow range) where the others keep 8 bits
    expect(one[2].qparams.qmax - one[2].qparams.qmin).toBeLessThanOrEqual(15);
    expect(first[2].qparams.qmax - first[2].qparams.qmin).toBeGreaterThanOrEqual(254);
    expect(one.filter((w, i) => w !== first[i]).length).toBe(1);
  });
});
