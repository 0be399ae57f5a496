/**
 * The pure math of reconstruction with engine gradients: the soft rounding and its rounding
 * regulariser (against finite differences), β's annealing, the LSQ fake-quant gradient
 * (against finite differences of the function the straight-through estimator
 * differentiates), Adam, the seeded drop masks and the training windows.
 */
import { describe, expect, it } from 'vitest';
import { Adam, cosineLr } from '../../src/lib/ptq/adam.ts';
import { MIN_SCALED_ITERS, reconHyper } from '../../src/lib/ptq/block-recon.ts';
import { MaskRng } from '../../src/lib/ptq/drop-mask.ts';
import { fakeQuantBackward, fakeQuantForward } from '../../src/lib/ptq/lsq.ts';
import {
  SoftRounding,
  beta,
  initialV,
  rectSigmoid,
  rectSigmoidGrad,
  roundingPenalty,
  roundingPenaltyGrad,
} from '../../src/lib/ptq/soft-rounding.ts';
import { ActivationSet } from '../../src/lib/ptq/activation-set.ts';
import { copyWindow, windowOf } from '../../src/lib/ptq/unit-trainer.ts';
import { roundHalfToEven } from '../../src/lib/quant/round.ts';
import { mulberry32 } from '../../src/lib/util/random.ts';

const central = (f: (x: number) => number, x: number, h: number) => (f(x + h) - f(x - h)) / (2 * h);

describe('soft rounding', () => {
  it('β stays at its start through the warm-up, then falls linearly to its end (MQBench LinearTempDecay)', () => {
    expect(beta(0, 1000, 20, 2, 0.2)).toBe(20);
    expect(beta(199, 1000, 20, 2, 0.2)).toBe(20);
    expect(beta(200, 1000, 20, 2, 0.2)).toBe(20);
    expect(beta(600, 1000, 20, 2, 0.2)).toBeCloseTo(11, 10);
    expect(beta(1000, 1000, 20, 2, 0.2)).toBeCloseTo(2, 10);
    expect(beta(5000, 1000, 20, 2, 0.2)).toBe(2);
  });

  it('h(V) starts at the fractional part and its derivative matches finite differences', () => {
    for (const rest of [0, 0.1, 0.5, 0.93]) expect(rectSigmoid(initialV(rest))).toBeCloseTo(rest, 12);
    for (const v of [-3, -1.2, 0, 0.7, 2.1]) {
      const inside = rectSigmoid(v) > 0 && rectSigmoid(v) < 1;
      expect(rectSigmoidGrad(v)).toBeCloseTo(inside ? central(rectSigmoid, v, 1e-6) : 0, 6);
    }
    // clipped: h = 1 for large V, and no gradient there
    expect(rectSigmoid(5)).toBe(1);
    expect(rectSigmoidGrad(5)).toBe(0);
  });

  it('the rounding penalty is 0 at 0 and 1, 1 at ½, and its derivative matches finite differences', () => {
    expect(roundingPenalty(0, 7)).toBe(0);
    expect(roundingPenalty(1, 7)).toBe(0);
    expect(roundingPenalty(0.5, 7)).toBe(1);
    for (const b of [20, 7.5, 2])
      for (const h of [0.05, 0.3, 0.62, 0.97])
        expect(roundingPenaltyGrad(h, b)).toBeCloseTo(
          central((x) => roundingPenalty(x, b), h, 1e-7),
          5,
        );
  });

  it('the gradient to V (reconstruction through the soft weights plus λ·penalty) matches finite differences', () => {
    const rand = mulberry32(4);
    const dims = [3, 2, 2, 2];
    const w = Float32Array.from({ length: 24 }, () => (rand() - 0.5) * 0.8);
    const qp = {
      scale: Float32Array.of(0.1, 0.05, 0.07),
      zeroPoint: Int32Array.of(0, 0, 0),
      qmin: -8,
      qmax: 7,
      axis: 0,
    };
    const r = new SoftRounding(w, dims, qp);
    // a quadratic loss on the soft weights: L = Σ c_i (ŵ_i − t_i)²
    const c = Float64Array.from({ length: 24 }, () => 1 + rand());
    const t = Float64Array.from({ length: 24 }, () => (rand() - 0.5) * 0.8);
    const lambda = 0.3;
    const b = 4;
    const soft = new Float32Array(24);
    const loss = () => {
      r.soft(soft);
      let l = 0;
      for (let i = 0; i < 24; i++) l += c[i] * (soft[i] - t[i]) ** 2;
      for (let i = 0; i < 24; i++) l += lambda * roundingPenalty(rectSigmoid(r.v[i]), b);
      return l;
    };
    loss();
    const gw = Float64Array.from(soft, (s, i) => 2 * c[i] * (s - t[i]));
    const g = new Float32Array(24);
    r.gradient(gw, b, lambda, g);
    let checked = 0;
    for (let i = 0; i < 24; i++) {
      const v0 = r.v[i];
      // finite differences in float64 (V itself is float32: step on a copy of the loss)
      const f = (x: number) => {
        r.v[i] = x;
        return loss();
      };
      const fd = central(f, v0, 1e-3);
      r.v[i] = v0;
      expect(g[i]).toBeCloseTo(fd, 2);
      if (Math.abs(fd) > 1e-3) checked++;
    }
    expect(checked).toBeGreaterThan(12);
  });

  it('starts at the float weights, rounds V ≥ 0 up, and counts flips against round-to-nearest', () => {
    const w = Float32Array.of(0.12, -0.37, 0.049, 0.31);
    const qp = { scale: Float32Array.of(0.1), zeroPoint: Int32Array.of(0), qmin: -8, qmax: 7, axis: -1 };
    const r = new SoftRounding(w, [4], qp);
    const soft = new Float32Array(4);
    r.soft(soft);
    for (let i = 0; i < 4; i++) expect(soft[i]).toBeCloseTo(w[i], 6);
    // nearest: 1, -4, 0, 3; force element 0 up (2) and element 1 down (−4 stays), element 3 up (4)
    r.v[0] = 1;
    r.v[1] = -1;
    r.v[2] = -1;
    r.v[3] = 1;
    expect([...r.codes()]).toEqual([2, -4, 0, 4]);
    expect([...r.hardValues()]).toEqual([...Float32Array.of(0.2, -0.4, 0, 0.4)]);
    expect(r.flips()).toBe(0.5);
  });
});

describe('LSQ fake quantizer', () => {
  it('forward is s·clip(round(x/s)); with a mask the float value passes where it is 0', () => {
    const x = [0.26, -0.49, 3.3, 0.75];
    expect([...fakeQuantForward(x, 0.5, -2, 3)]).toEqual([0.5, -0.5, 1.5, 1]);
    expect([...fakeQuantForward(x, 0.5, -2, 3, [1, 0, 1, 0])]).toEqual([0.5, -0.49, 1.5, 0.75]);
  });

  it('its gradients match finite differences of the function the straight-through estimator differentiates', () => {
    const rand = mulberry32(8);
    const n = 200;
    const x = Float64Array.from({ length: n }, () => (rand() - 0.3) * 4);
    const gy = Float64Array.from({ length: n }, () => rand() - 0.5);
    const mask = Float64Array.from({ length: n }, () => (rand() < 0.5 ? 1 : 0));
    const s = 0.23;
    const [lo, hi] = [-4, 7];
    for (const m of [undefined, mask]) {
      // surrogate at s: round(u) → u + δ and the clip decision frozen
      const u0 = Float64Array.from(x, (v) => v / s);
      const r0 = Float64Array.from(u0, roundHalfToEven);
      const inside = Float64Array.from(r0, (r) => (r >= lo && r <= hi ? 1 : 0));
      const sur = (sc: number, xs: ArrayLike<number>) => {
        let l = 0;
        for (let i = 0; i < n; i++) {
          const c = inside[i] ? xs[i] / sc + (r0[i] - u0[i]) : Math.min(hi, Math.max(lo, r0[i]));
          const y = m && !m[i] ? xs[i] : c * sc;
          l += gy[i] * y;
        }
        return l;
      };
      const { gx, gs } = fakeQuantBackward(x, gy, s, lo, hi, m);
      expect(gs).toBeCloseTo(
        central((sc) => sur(sc, x), s, 1e-6),
        6,
      );
      for (const i of [0, 17, 55, 120, 199]) {
        const fd = central(
          (v) => {
            const xs = Float64Array.from(x);
            xs[i] = v;
            return sur(s, xs);
          },
          x[i],
          1e-7,
        );
        expect(gx[i]).toBeCloseTo(fd, 5);
      }
    }
  });

  it('clipped elements give their code to the step-size gradient and nothing to the input', () => {
    // x/s = 10 → clipped to 7: dy/ds = 7, dy/dx = 0; x/s = 2.3 → 2: dy/ds = 2 − 2.3
    const { gx, gs } = fakeQuantBackward([5, 1.15], [1, 1], 0.5, -8, 7);
    expect([...gx]).toEqual([0, 1]);
    expect(gs).toBeCloseTo(7 + (2 - 2.3), 12);
  });
});

describe('Adam and the step-size schedule', () => {
  it('takes torch.optim.Adam steps', () => {
    const p = Float64Array.of(1, -2);
    const a = new Adam(2);
    a.step(p, [0.5, -4], 0.1);
    // first step: m̂ = g, v̂ = g², so p −= lr·sign(g) (up to eps)
    expect(p[0]).toBeCloseTo(0.9, 6);
    expect(p[1]).toBeCloseTo(-1.9, 6);
    a.step(p, [0.5, 4], 0.1);
    // m = (0.1·(−4)·0.9 + 0.1·4) = 0.04 → m̂ = 0.04/0.19; v̂ = 16 → step 0.1·0.2105/4
    expect(p[1]).toBeCloseTo(-1.9 - (0.1 * (0.04 / 0.19)) / 4, 6);
  });

  it("scales the step sizes to the run's length, MQBench's at 20,000 steps", () => {
    const mq = reconHyper(20_000);
    expect(mq.lrRounding).toBeCloseTo(1e-3, 12);
    expect(mq.lrScale).toBeCloseTo(4e-5, 12);
    expect(mq.lambda).toBe(0.01);
    expect([mq.betaStart, mq.betaEnd, mq.warmup]).toEqual([20, 2, 0.2]);
    const short = reconHyper(500, { batch: 2 });
    expect(short.lrRounding * 500).toBeCloseTo(20, 10);
    expect(short.batch).toBe(2);
    // below MIN_SCALED_ITERS the steps stop growing: 0.1 per step on the rounding variables
    expect(reconHyper(60).lrRounding).toBeCloseTo(20 / MIN_SCALED_ITERS, 12);
  });

  it('anneals with a cosine from the step size to 0', () => {
    expect(cosineLr(4e-4, 0, 100)).toBe(4e-4);
    expect(cosineLr(4e-4, 50, 100)).toBeCloseTo(2e-4, 12);
    expect(cosineLr(4e-4, 100, 100)).toBeCloseTo(0, 12);
  });
});

describe('QDrop masks', () => {
  it('keep about the asked share, are reproducible from the seed and differ between seeds', () => {
    const a = new Float32Array(100_001);
    const b = new Float32Array(100_001);
    new MaskRng(3).fillMask(a, 0.5);
    new MaskRng(3).fillMask(b, 0.5);
    const equal = (x: Float32Array, y: Float32Array) => x.every((v, i) => v === y[i]);
    expect(equal(a, b)).toBe(true);
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    expect(mean).toBeGreaterThan(0.49);
    expect(mean).toBeLessThan(0.51);
    new MaskRng(4).fillMask(b, 0.5);
    expect(equal(a, b)).toBe(false);
    const c = new Float32Array(100_000);
    new MaskRng(5).fillMask(c, 0.2);
    expect(c.reduce((s, v) => s + v, 0) / c.length).toBeCloseTo(0.2, 2);
    // neighbours are independent (two elements per draw): agreement ≈ p² + (1 − p)²
    let same = 0;
    for (let i = 0; i + 1 < a.length; i += 2) if (a[i] === a[i + 1]) same++;
    expect(same / (a.length / 2)).toBeCloseTo(0.5, 1);
  });

  it('keeps everything at 1 and nothing at 0', () => {
    const m = new Float32Array(9);
    new MaskRng(1).fillMask(m, 1);
    expect([...m]).toEqual(new Array(9).fill(1));
    new MaskRng(1).fillMask(m, 0);
    expect([...m]).toEqual(new Array(9).fill(0));
  });

  it('draws integers below a bound uniformly', () => {
    const rng = new MaskRng(9);
    const counts = new Array(5).fill(0);
    for (let i = 0; i < 50_000; i++) counts[rng.below(5)]++;
    for (const c of counts) expect(c / 50_000).toBeCloseTo(0.2, 1);
  });
});

describe('training windows', () => {
  it('cut maps larger than the window with the unit stride, and leave small ones whole', () => {
    expect(windowOf([16, 112, 112], [24, 56, 56])).toEqual({ side: 56, stride: 2 });
    expect(windowOf([24, 56, 56], [24, 56, 56])).toEqual({ side: 28, stride: 1 });
    expect(windowOf([3, 224, 224], [16, 112, 112])).toEqual({ side: 56, stride: 2 });
    expect(windowOf([64, 28, 28], [64, 28, 28])).toBeNull();
    expect(windowOf([320, 7, 7], [1000])).toBeNull();
  });

  it('copy the window of one image out of the stored set', () => {
    const set = new ActivationSet([2, 4, 4]);
    const data = Float32Array.from({ length: 3 * 32 }, (_, i) => i);
    set.push({ data: data.slice(0, 64), dims: [2, 2, 4, 4] });
    set.push({ data: data.slice(64), dims: [1, 2, 4, 4] });
    const out = new Float32Array(8);
    copyWindow(set, 2, 1, 2, 2, new Float32Array(32), out, 0);
    // image 2 starts at 64: channel 0 rows 1–2, cols 2–3; channel 1 likewise (+16)
    expect([...out]).toEqual([70, 71, 74, 75, 86, 87, 90, 91]);
    const batch = set.gather([2, 0]);
    expect(batch.dims).toEqual([2, 2, 4, 4]);
    expect(batch.data[0]).toBe(64);
    expect(batch.data[32]).toBe(0);
  });
});
