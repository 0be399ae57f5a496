/**
 * The integer-kernel side of the export, on numbers and graphs only (no session): the
 * kernels' arithmetic (int32 bias, float32 requantization, fixed-point multiplier), one
 * output pixel computed by hand, and the integer plan/graph of a tiny Conv → ReLU6 → Conv
 * network (which ops fuse, the int32 bias, the output quantizer added before a ReLU6 the
 * signed quantizer does not cover, a bias too large for an int32).
 */
import { describe, expect, it } from 'vitest';
import {
  INT32_MAX,
  averagePoolScale,
  fitsInt32,
  fixedPointMultiplier,
  outputMultiplier,
  qlinearAdd,
  typeRange,
  quantizeBias,
  requantize,
  requantizeFixedPoint,
  roundingDivideByPot,
  roundingDoublingHighMul,
} from '../../src/lib/export/kernels.ts';
import { type IntegerConv, convPixel } from '../../src/lib/export/integer-arithmetic.ts';
import {
  type ActQuant,
  type IntegerPlan,
  clipRedundant,
  planIntegerKernels,
} from '../../src/lib/export/integer-plan.ts';
import { arithmeticLayer } from '../../src/lib/export/deploy-check.ts';
import { buildIntegerQdq } from '../../src/lib/export/integer-qdq.ts';
import type { Deployable } from '../../src/lib/export/deployable.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { makeGraph, makeNode, makeTensor, makeValueInfo, producerOf } from '../../src/lib/onnx/ir.ts';
import type { QParams } from '../../src/lib/quant/types.ts';
import { mulberry32 } from '../../src/lib/util/random.ts';
import { roundHalfToEven } from '../../src/lib/quant/round.ts';
import { evalGraph } from '../support/reference-eval.ts';

const f = Math.fround;

describe('integer kernel arithmetic', () => {
  it('rounds the bias to int32 at float32(s_x·s_w), ties to even', () => {
    const sx = 0.5;
    const sw = 0.25; // s_x·s_w = 0.125, exact
    expect(quantizeBias(0.3125, sx, sw)).toBe(2); // 2.5 → 2
    expect(quantizeBias(0.4375, sx, sw)).toBe(4); // 3.5 → 4
    expect(quantizeBias(-0.3125, sx, sw)).toBe(-2);
  });

  it('requantizes as MlasRequantizeOutput: float32(acc)·M, clamp to uint8, round half to even', () => {
    // a MobileNet-V2 stem output measured against onnxruntime-node: scaled 69.49999237 → 69
    const m = 0.001251282636076212;
    expect(f(f(55543) * f(m))).toBeCloseTo(69.49999237, 6);
    expect(requantize(55543, f(m), 0, false)).toBe(69);
    expect(requantize(2, 0.25, 10, false)).toBe(10); // 0.5 → 0
    expect(requantize(6, 0.25, 10, false)).toBe(12); // 1.5 → 2
    expect(requantize(1e6, 0.25, 10, false)).toBe(255);
    expect(requantize(-1e6, 0.25, 10, false)).toBe(0);
    expect(outputMultiplier(0.5, 0.25, 0.3)).toBe(f(f(0.125) / f(0.3)));
  });

  it('writes M as M0·2^−n with M0 an int32 in [2^30, 2^31), and integer requantization follows it', () => {
    const rng = mulberry32(3);
    let equal = 0;
    for (let i = 0; i < 2000; i++) {
      const m = f(10 ** (-1 - 4 * rng()));
      const fp = fixedPointMultiplier(m);
      expect(fp.m0).toBeGreaterThanOrEqual(2 ** 30);
      expect(fp.m0).toBeLessThan(2 ** 31);
      expect(Math.abs(fp.value - m) / m).toBeLessThan(2 ** -30);
      const acc = Math.round(((rng() - 0.3) * 200) / m);
      const a = requantize(acc, m, 0, false);
      const b = requantizeFixedPoint(acc, fp, 0, false);
      expect(Math.abs(a - b)).toBeLessThanOrEqual(1);
      if (a === b) equal++;
    }
    expect(equal).toBeGreaterThan(1990); // they differ only where float32 rounding tips a tie
    expect(() => fixedPointMultiplier(1.5)).toThrow(RangeError);
  });

  it('rounds the gemmlowp way: doubling high multiply (ties up), divide by a power of two (ties away from zero)', () => {
    expect(roundingDoublingHighMul(2 ** 30, 2 ** 30)).toBe(2 ** 29);
    expect(roundingDoublingHighMul(3, 2 ** 30)).toBe(2); // 1.5 → 2
    expect(roundingDoublingHighMul(-3, 2 ** 30)).toBe(-1); // −1.5 → −1 (gemmlowp's nudge rounds ties up)
    expect(roundingDivideByPot(5, 1)).toBe(3);
    expect(roundingDivideByPot(-5, 1)).toBe(-3);
    expect(roundingDivideByPot(4, 2)).toBe(1);
    expect(roundingDivideByPot(-6, 2)).toBe(-2);
  });

  it('computes one output pixel step by step: products, int32 sum, bias, M, code', () => {
    // 1 input channel 3×3 (zero point 10), one 3×3 filter, pad 1: output (0, 0, 0) sees the top-left 2×2
    const p = convPixel(
      {
        input: [12, 13, 14, 15, 16, 17, 18, 19, 20],
        inputShape: [1, 3, 3],
        inputScale: 0.5,
        inputZeroPoint: 10,
        weights: [1, 2, 3, 4, 5, 6, 7, 8, 9],
        weightShape: [1, 1, 3, 3],
        weightScale: [0.25],
        weightZeroPoint: 0,
        bias: [16],
        outputScale: 1,
        outputZeroPoint: 3,
        strides: [1, 1],
        pads: [1, 1, 1, 1],
        group: 1,
      },
      0,
      0,
      0,
    );
    // (12−10)·5 + (13−10)·6 + (15−10)·8 + (16−10)·9 = 10 + 18 + 40 + 54
    expect(p.accumulator).toBe(122);
    expect(p.terms.filter((t) => t.x !== 0).map((t) => t.product)).toEqual([10, 18, 40, 54]);
    expect(p.total).toBe(138);
    expect(p.multiplier).toBe(0.125);
    expect(p.code).toBe(3 + 17); // 138·0.125 = 17.25 → 17
    expect(p.fixedPointCode).toBe(p.code);
    expect(p.value).toBe(17);
  });
});

describe('integer kernel arithmetic: the other kernels and the edges', () => {
  it('saturates to the 8-bit types and knows the int32 range exactly', () => {
    expect(typeRange(true)).toEqual({ lo: -128, hi: 127 });
    expect(typeRange(false)).toEqual({ lo: 0, hi: 255 });
    expect(INT32_MAX).toBe(2147483647);
    expect([-(2 ** 31), -(2 ** 31) - 1, 2 ** 31 - 1, 2 ** 31, 0].map(fitsInt32)).toEqual([
      true,
      false,
      true,
      false,
      true,
    ]);
  });

  it('adds as QLinearAdd: s_a(a − z_a) + s_b(b − z_b), over s_c, clamped, rounded half to even, plus z_c', () => {
    const p = { sa: 0.5, za: 10, sb: 0.25, zb: 20, sc: 2, zc: 5, signed: false };
    expect(qlinearAdd(14, 28, p)).toBe(7); // (2 + 2) / 2 = 2 → 7
    expect(qlinearAdd(19, 20, { ...p, sc: 1, zc: 1 })).toBe(6); // 4.5 + 0 = 4.5 → 4, + 1 (rounded after z_c: 5.5 → 6)
    expect(qlinearAdd(15, 20, { ...p, sc: 1, zc: 1 })).toBe(4); // 2.5 + 1 = 3.5 → 4
    // clamped to [lo − z_c, hi − z_c] before z_c comes back
    const one = { sa: 1, za: 0, sb: 1, zb: 0, sc: 1, zc: 10, signed: false };
    expect(qlinearAdd(250, 250, one)).toBe(255);
    expect(qlinearAdd(0, 0, { ...one, za: 100 })).toBe(0);
    expect(qlinearAdd(-100, -100, { ...one, signed: true })).toBe(-128);
    expect(qlinearAdd(100, 100, { ...one, signed: true })).toBe(127);
  });

  it('pools as QLinearGlobalAveragePool: the float32 scale s_x / (s_y·N)', () => {
    expect(averagePoolScale(1, 0.5, 4)).toBe(0.5);
    expect(averagePoolScale(0.3, 0.1, 49)).toBe(f(f(0.3) / f(f(0.1) * 49)));
  });

  it('refuses a multiplier outside (0, 1) and keeps M0 below 2^31 when q·2^31 rounds up to it', () => {
    for (const m of [0, 1, -0.25, 1.5, Number.NaN]) expect(() => fixedPointMultiplier(m), `${m}`).toThrow(RangeError);
    expect(fixedPointMultiplier(Number.MIN_VALUE).m0).toBe(2 ** 30);
    // q = 1 − 2^−40 is 2^31 − 2^−9 after scaling: M0 rounds to 2^31, so M = 2^30·2^−30
    expect(fixedPointMultiplier(1 - 2 ** -40)).toEqual({ m0: 2 ** 30, shift: -1, value: 1 });
    const fp = fixedPointMultiplier(0.75);
    expect(fp).toMatchObject({ m0: 0.75 * 2 ** 31, value: 0.75 });
    expect(fp.shift === 0).toBe(true); // −0 from −e: the same shift
  });

  it("multiplies like gemmlowp's doubling high multiply at int32's edge and for negative products", () => {
    expect(roundingDoublingHighMul(-(2 ** 31), -(2 ** 31))).toBe(INT32_MAX); // the one overflow, saturated
    expect(roundingDoublingHighMul(-(2 ** 31), 1)).toBe(-1); // −2^31 / 2^31, exact
    expect(roundingDoublingHighMul(1, -(2 ** 31))).toBe(-1);
    expect(roundingDoublingHighMul(-5, 2 ** 29)).toBe(-1); // −1.25 → −1
    expect(roundingDoublingHighMul(-7, 2 ** 29)).toBe(-2); // −1.75 → −2
    expect(roundingDoublingHighMul(0, 12345)).toBe(0);
  });
});

/** The accumulator of every output of an integer convolution, by scattering each input through each tap. */
function scatterConv(conv: IntegerConv): { acc: Float64Array; oH: number; oW: number } {
  const [C, H, W] = conv.inputShape;
  const [O, Cg, kH, kW] = conv.weightShape;
  const [sH, sW] = conv.strides;
  const oH = Math.floor((H + conv.pads[0] + conv.pads[2] - kH) / sH) + 1;
  const oW = Math.floor((W + conv.pads[1] + conv.pads[3] - kW) / sW) + 1;
  const acc = new Float64Array(O * oH * oW);
  const perGroup = O / conv.group;
  for (let c = 0; c < C; c++) {
    const g = Math.floor(c / Cg);
    for (let iy = 0; iy < H; iy++)
      for (let ix = 0; ix < W; ix++) {
        const xv = conv.input[(c * H + iy) * W + ix] - conv.inputZeroPoint;
        for (let o = g * perGroup; o < (g + 1) * perGroup; o++)
          for (let ky = 0; ky < kH; ky++)
            for (let kx = 0; kx < kW; kx++) {
              const ty = iy + conv.pads[0] - ky;
              const tx = ix + conv.pads[1] - kx;
              if (ty % sH || tx % sW) continue;
              const y = ty / sH;
              const x = tx / sW;
              if (y < 0 || y >= oH || x < 0 || x >= oW) continue;
              const wv = conv.weights[((o * Cg + (c - g * Cg)) * kH + ky) * kW + kx] - conv.weightZeroPoint;
              acc[(o * oH + y) * oW + x] += xv * wv;
            }
      }
  }
  return { acc, oH, oW };
}

describe('convPixel against a whole convolution', () => {
  /** 2 channels of 2×2, 4 filters of 1×1 in 2 groups, one weight scale */
  const base: IntegerConv = {
    input: new Array(2 * 2 * 2).fill(1),
    inputShape: [2, 2, 2],
    inputScale: 0.1,
    inputZeroPoint: 0,
    weights: new Array(4 * 1 * 1 * 1).fill(1),
    weightShape: [4, 1, 1, 1],
    weightScale: [0.1],
    weightZeroPoint: 0,
    outputScale: 0.1,
    outputZeroPoint: 0,
    strides: [1, 1],
    pads: [0, 0, 0, 0],
    group: 2,
  };
  it('every output of random grouped, strided, asymmetrically padded convolutions', () => {
    const rng = mulberry32(11);
    const int = (lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
    let checked = 0;
    for (let trial = 0; trial < 40; trial++) {
      const group = int(1, 3);
      const Cg = int(1, 2);
      const C = group * Cg;
      const O = group * int(1, 2);
      const [kH, kW] = [int(1, 3), int(1, 3)];
      const [H, W] = [int(kH, 5), int(kW, 5)];
      const conv: IntegerConv = {
        input: Array.from({ length: C * H * W }, () => int(0, 255)),
        inputShape: [C, H, W],
        inputScale: 0.02 + rng() * 0.05,
        inputZeroPoint: int(0, 255),
        weights: Array.from({ length: O * Cg * kH * kW }, () => int(-127, 127)),
        weightShape: [O, Cg, kH, kW],
        weightScale: Array.from({ length: O }, () => 0.001 + rng() * 0.01),
        weightZeroPoint: int(-3, 3),
        bias: Array.from({ length: O }, () => int(-5000, 5000)),
        outputScale: 0.05 + rng() * 0.2,
        outputZeroPoint: int(0, 255),
        strides: [int(1, 2), int(1, 2)],
        pads: [int(0, 2), int(0, 2), int(0, 2), int(0, 2)],
        group,
      };
      const { acc, oH, oW } = scatterConv(conv);
      for (let o = 0; o < O; o++)
        for (let y = 0; y < oH; y++)
          for (let x = 0; x < oW; x++) {
            const p = convPixel(conv, o, y, x);
            const want = acc[(o * oH + y) * oW + x];
            expect(p.accumulator, `trial ${trial} (${o}, ${y}, ${x})`).toBe(want);
            expect(p.terms).toHaveLength(Cg * kH * kW);
            expect(p.bias).toBe(conv.bias![o]);
            expect(p.total).toBe(want + conv.bias![o]);
            expect(p.multiplier).toBe(outputMultiplier(conv.inputScale, conv.weightScale[o], conv.outputScale));
            expect(p.code).toBe(requantize(p.total, p.multiplier, conv.outputZeroPoint, false));
            checked++;
          }
      // the last output is inside, one step past any edge is not
      expect(() => convPixel(conv, O - 1, oH - 1, oW - 1)).not.toThrow();
      for (const [c, y, x] of [
        [-1, 0, 0],
        [O, 0, 0],
        [0, -1, 0],
        [0, oH, 0],
        [0, 0, -1],
        [0, 0, oW],
      ])
        expect(() => convPixel(conv, c, y, x), `(${c}, ${y}, ${x})`).toThrow(
          `lies outside the ${O}×${oH}×${oW} output`,
        );
    }
    expect(checked).toBeGreaterThan(300);
  });

  it('refuses inconsistent shapes: the input, the weights, the groups', () => {
    // one weight scale for every channel (per tensor)
    expect(convPixel(base, 3, 1, 1).multiplier).toBe(outputMultiplier(0.1, 0.1, 0.1));
    for (const bad of [{ input: new Array(7).fill(1) }, { weights: new Array(3).fill(1) }, { group: 1 }, { group: 4 }])
      expect(() => convPixel({ ...base, ...bad }, 0, 0, 0), JSON.stringify(Object.keys(bad))).toThrow(
        'The integer convolution has inconsistent shapes.',
      );
  });

  it('writes an unsigned code above 127, its scaled value and its real value from the output scale', () => {
    // one input channel of one pixel, one 1×1 filter: the base above cut down
    const one: IntegerConv = { ...base, input: [20], inputShape: [1, 1, 1], weights: [8], weightShape: [1, 1, 1, 1] };
    const p = convPixel(
      { ...one, inputScale: 0.5, weightScale: [0.25], outputScale: 0.5, outputZeroPoint: 200, group: 1 },
      0,
      0,
      0,
    );
    // 160 · (0.5·0.25 / 0.5) = 40 → 240 in uint8 (a signed type would saturate at 127)
    expect(p.multiplier).toBe(0.25);
    expect(p.scaled).toBe(40);
    expect(p.code).toBe(240);
    expect(p.fixedPointCode).toBe(240);
    expect(p.value).toBe(20); // (240 − 200) · 0.5
  });
});

/** A Conv (bias) → ReLU6 → Conv network with quantized weights and the two activation points. */
function tinyDeployable(act: 'signed' | 'unsigned', bias = [0.1, -0.2]): Deployable {
  const graph = makeGraph({
    inputs: [makeValueInfo('input', ['N', 1, 4, 4])],
    outputs: [makeValueInfo('output', ['N', 2, 4, 4])],
    initializers: [
      makeTensor('w1', [2, 1, 1, 1], [0.5, -0.25]),
      makeTensor('b1', [2], bias),
      makeTensor('w2', [2, 2, 1, 1], [0.5, 0.25, -0.5, 1]),
      makeTensor('c0', [], [0]),
      makeTensor('c6', [], [6]),
    ],
    nodes: [
      makeNode('Conv', ['input', 'w1', 'b1'], ['c1'], {}, { name: 'conv1' }),
      makeNode('Clip', ['c1', 'c0', 'c6'], ['r1'], {}, { name: 'relu6' }),
      makeNode('Conv', ['r1', 'w2'], ['output'], {}, { name: 'conv2' }),
    ],
  });
  const wq = (scale: number[]): QParams => ({
    scale: Float32Array.from(scale),
    zeroPoint: new Int32Array(scale.length),
    qmin: -127,
    qmax: 127,
    axis: 0,
  });
  const a = (scale: number): QParams =>
    act === 'signed'
      ? { scale: Float32Array.of(scale), zeroPoint: Int32Array.of(0), qmin: -127, qmax: 127, axis: -1 }
      : { scale: Float32Array.of(scale), zeroPoint: Int32Array.of(0), qmin: 0, qmax: 255, axis: -1 };
  return {
    config: resolveConfig({ backend: act === 'signed' ? 'tensorrt' : 'fbgemm' }),
    graph,
    weights: [
      {
        initializer: 'w1',
        node: 'conv1',
        dims: [2, 1, 1, 1],
        codes: Int32Array.of(127, -127),
        qparams: wq([0.5 / 127, 0.25 / 127]),
        maxAbsError: 0,
      },
      {
        initializer: 'w2',
        node: 'conv2',
        dims: [2, 2, 1, 1],
        codes: Int32Array.of(127, 64, -64, 127),
        qparams: wq([0.5 / 127, 1 / 127]),
        maxAbsError: 0,
      },
    ],
    activations: [
      { tensor: 'input', qparams: a(act === 'signed' ? 2 / 127 : 2 / 255), min: -2, max: 2 },
      { tensor: 'r1', qparams: a(act === 'signed' ? 6 / 127 : f(6 / 255)), min: 0, max: 6 },
    ],
  };
}

describe('integer plan and graph', () => {
  it('an unsigned quantizer covering [0, 6] absorbs the ReLU6: one QLinearConv writes r1', () => {
    const plan = planIntegerKernels(tinyDeployable('unsigned'));
    const conv1 = plan.layers.find((l) => l.node === 'conv1')!;
    expect(conv1.kernel).toBe('QLinearConv');
    expect(conv1.absorbed).toBe('relu6');
    expect(conv1.output?.tensor).toBe('r1');
    // the second Conv writes the model output: float
    expect(plan.layers.find((l) => l.node === 'conv2')).toMatchObject({ kernel: 'float' });
  });

  it('a signed quantizer after ReLU6 gets its copy at the Conv output (uint8, zero point 128)', () => {
    const d = tinyDeployable('signed');
    const plan = planIntegerKernels(d);
    const conv1 = plan.layers.find((l) => l.node === 'conv1')!;
    expect(conv1).toMatchObject({ kernel: 'QLinearConv', insertedAt: 'c1' });
    expect(conv1.output).toMatchObject({ tensor: 'c1', zeroPoint: 128, qmin: 1, qmax: 255 });
    const relu6 = d.graph.nodes[1];
    expect(clipRedundant(d.graph, relu6, conv1.output!)).toBe(false);
    expect(clipRedundant(d.graph, relu6, { ...conv1.output!, zeroPoint: 0, scale: f(6 / 255) })).toBe(true);
  });

  it('stores the bias as int32 at s_x·s_w beside the Conv and activations as uint8, without a narrow-range Clip', () => {
    const d = tinyDeployable('signed');
    const { graph, plan } = buildIntegerQdq(d);
    const conv1 = graph.nodes.find((n) => n.name === 'conv1')!;
    const dq = producerOf(graph).get(conv1.inputs[2])!;
    expect(dq.opType).toBe('DequantizeLinear');
    const codes = graph.initializers.get(dq.inputs[0])!;
    expect(codes.dtype).toBe('int32');
    const sx = 2 / 127;
    expect(Array.from(codes.data as Int32Array)).toEqual([
      quantizeBias(0.1, sx, 0.5 / 127),
      quantizeBias(-0.2, sx, 0.25 / 127),
    ]);
    expect(Array.from(plan.layers[0].bias!.codes)).toEqual(Array.from(codes.data as Int32Array));
    const q = graph.nodes.filter((n) => n.opType === 'QuantizeLinear');
    expect(q.map((n) => n.inputs[0]).sort()).toEqual(['c1', 'input', 'r1']);
    for (const n of q) expect(graph.initializers.get(n.inputs[2])!.dtype).toBe('uint8');
    expect(graph.nodes.filter((n) => n.opType === 'Clip')).toHaveLength(1); // the ReLU6 only
  });

  it('grows the weight scale of a channel whose bias does not fit an int32, and re-rounds its weights', () => {
    const d = tinyDeployable('unsigned', [0.1, 5]);
    d.weights[0] = { ...d.weights[0], qparams: { ...d.weights[0].qparams, scale: Float32Array.of(0.5 / 127, 1e-12) } };
    const plan = planIntegerKernels(d);
    const conv1 = plan.layers.find((l) => l.node === 'conv1')!;
    expect(conv1.rescaled).toHaveLength(1);
    expect(conv1.rescaled![0]).toMatchObject({ channel: 1, from: f(1e-12) });
    expect(Math.abs(conv1.bias!.codes[1])).toBeLessThanOrEqual(2 ** 31 - 1);
    expect(conv1.weight!.codes[1]).toBe(0); // −127·1e-12 on the new grid
    expect(conv1.bias!.codes[0]).toBe(quantizeBias(0.1, f(2 / 255), 0.5 / 127));
  });

  it('refuses quantizers other than 8 bits', () => {
    const d = tinyDeployable('unsigned');
    d.activations[1] = { ...d.activations[1], qparams: { ...d.activations[1].qparams, qmax: 15 } };
    expect(() => planIntegerKernels(d)).toThrow(/8-bit tensors/);
  });
});

describe('the integer QDQ graph computes what the kernels compute', () => {
  const clampU8 = (v: number) => Math.min(255, Math.max(0, v));
  /** QuantizeLinear then DequantizeLinear in uint8: the full range, no narrow-range Clip */
  const qdq = (v: number, q: ActQuant) =>
    (clampU8(roundHalfToEven(f(v / q.scale)) + q.zeroPoint) - q.zeroPoint) * q.scale;

  for (const act of ['signed', 'unsigned'] as const) {
    it(`${act} activations: the output of every pixel, worked out from the plan's codes and scales`, () => {
      const d = tinyDeployable(act);
      // the second layer's weights per tensor, to cover both weight layouts
      d.weights[1] = {
        ...d.weights[1],
        codes: Int32Array.of(127, 64, -64, 127),
        qparams: { scale: Float32Array.of(1 / 127), zeroPoint: Int32Array.of(0), qmin: -127, qmax: 127, axis: -1 },
      };
      const { graph, plan } = buildIntegerQdq(d);
      const xs = Array.from({ length: 16 }, (_, i) => -2.6 + i * 0.35);
      const out = evalGraph(graph, { input: { dims: [1, 1, 4, 4], data: Float64Array.from(xs) } }).output;
      expect(out.dims).toEqual([1, 2, 4, 4]);

      const layer1 = plan.layers.find((l) => l.node === 'conv1')!;
      const w1 = layer1.weight!;
      const w2 = d.weights[1];
      const inputQ = plan.activations.get('input')!;
      const r1Q = plan.activations.get('r1')!;
      // signed: the Conv's output is quantized too, where the plan inserted it
      const c1Q = layer1.insertedAt === 'c1' ? layer1.output! : undefined;
      expect(c1Q !== undefined).toBe(act === 'signed');
      const expected: number[] = [];
      for (let o = 0; o < 2; o++) {
        for (const x of xs) {
          const r = [0, 1].map((c) => {
            const conv =
              w1.codes[c] * w1.qparams.scale[c] * qdq(x, inputQ) + layer1.bias!.codes[c] * layer1.bias!.scale[c];
            const clipped = Math.min(6, Math.max(0, c1Q ? qdq(conv, c1Q) : conv));
            return qdq(clipped, r1Q);
          });
          expected.push(
            w2.codes[o * 2] * w2.qparams.scale[0] * r[0] + w2.codes[o * 2 + 1] * w2.qparams.scale[0] * r[1],
          );
        }
      }
      expect(new Set(expected.map((v) => v.toFixed(3))).size).toBeGreaterThan(8); // not a saturated constant
      for (let i = 0; i < expected.length; i++) expect(out.data[i], `output ${i}`).toBeCloseTo(expected[i], 5);
    });
  }

  it('uint8 weights (zero point 128) are stored as uint8 and give the outputs of the same int8 weights', () => {
    const signedW = tinyDeployable('unsigned');
    const unsignedW = tinyDeployable('unsigned');
    const w = unsignedW.weights[0];
    unsignedW.weights[0] = {
      ...w,
      codes: Int32Array.from(w.codes, (c) => c + 128),
      qparams: { ...w.qparams, zeroPoint: Int32Array.of(128, 128), qmin: 0, qmax: 255 },
    };
    const a = buildIntegerQdq(signedW).graph;
    const b = buildIntegerQdq(unsignedW).graph;
    expect(a.initializers.get('w1_quantized')!.dtype).toBe('int8');
    expect(b.initializers.get('w1_quantized')!.dtype).toBe('uint8');
    expect(b.initializers.get('w1_zero_point')!.dtype).toBe('uint8');
    const input = { dims: [1, 1, 4, 4], data: Float64Array.from({ length: 16 }, (_, i) => -1.9 + i * 0.25) };
    expect(Array.from(evalGraph(b, { input }).output.data)).toEqual(Array.from(evalGraph(a, { input }).output.data));
  });

  it('a Gemm runs in float on its dequantized input (QGemm is not modelled): its beta and float bias stay', () => {
    const graph = makeGraph({
      inputs: [makeValueInfo('input', ['N', 3])],
      outputs: [makeValueInfo('output', ['N', 2])],
      initializers: [makeTensor('w', [2, 3], [0.5, -0.25, 1, 0.75, 0.5, -1]), makeTensor('b', [2], [0.4, -0.6])],
      nodes: [makeNode('Gemm', ['input', 'w', 'b'], ['output'], { transB: 1, beta: 0.5 }, { name: 'fc' })],
    });
    const d: Deployable = {
      config: resolveConfig({ backend: 'fbgemm' }),
      graph,
      weights: [
        {
          initializer: 'w',
          node: 'fc',
          dims: [2, 3],
          codes: Int32Array.of(64, -32, 127, 95, 64, -127),
          qparams: {
            scale: Float32Array.of(1 / 127, 1 / 127),
            zeroPoint: new Int32Array(2),
            qmin: -127,
            qmax: 127,
            axis: 0,
          },
          maxAbsError: 0,
        },
      ],
      activations: [
        {
          tensor: 'input',
          qparams: { scale: Float32Array.of(f(2 / 255)), zeroPoint: Int32Array.of(0), qmin: 0, qmax: 255, axis: -1 },
          min: 0,
          max: 2,
        },
      ],
    };
    const { graph: g, plan } = buildIntegerQdq(d);
    expect(plan.layers.find((l) => l.node === 'fc')).toMatchObject({ kernel: 'float' });
    const fc = g.nodes.find((n) => n.name === 'fc')!;
    expect(fc.attrs).toEqual({ transB: 1, beta: 0.5 });
    expect(fc.inputs).toEqual(['input_dequantized', 'w', 'b']);
    const xs = [0.3, 1.1, 1.9];
    const out = evalGraph(g, { input: { dims: [1, 3], data: Float64Array.from(xs) } }).output;
    const xq = xs.map((x) => qdq(x, plan.activations.get('input')!));
    for (let o = 0; o < 2; o++) {
      const dot = [0, 1, 2].reduce((s, k) => s + (d.weights[0].codes[o * 3 + k] / 127) * xq[k], 0);
      expect(out.data[o], `output ${o}`).toBeCloseTo(dot + 0.5 * [0.4, -0.6][o], 5);
    }
  });

  it("names what it adds as onnxruntime's quantizer does, and says what the file is", () => {
    const d = tinyDeployable('signed');
    d.graph.meta.metadataProps = [
      { key: 'quantization', value: 'an older note' },
      { key: 'author', value: 'a student' },
    ];
    d.weights[1] = {
      ...d.weights[1],
      qparams: { scale: Float32Array.of(1 / 127), zeroPoint: Int32Array.of(0), qmin: -127, qmax: 127, axis: -1 },
    };
    const { graph, codes } = buildIntegerQdq(d);
    const byName = new Map(graph.nodes.map((n) => [n.name, n]));
    // a per-tensor weight: scalar scale and zero point, no axis (a per-channel one: below)
    expect(byName.get('w2_DequantizeLinear')!.attrs).toEqual({});
    expect(graph.initializers.get('w2_scale')!.dims).toEqual([]);
    expect(graph.initializers.get('w2_zero_point')!.dims).toEqual([]);
    expect(byName.get('w1_DequantizeLinear')).toMatchObject({
      opType: 'DequantizeLinear',
      inputs: ['w1_quantized', 'w1_scale', 'w1_zero_point'],
      outputs: ['w1'],
      attrs: { axis: 0 },
    });
    expect(graph.initializers.get('w1_quantized')).toMatchObject({ dtype: 'int8', dims: [2, 1, 1, 1] });
    expect(graph.initializers.get('w1_scale')!.dims).toEqual([2]);
    expect(graph.initializers.get('w1_zero_point')).toMatchObject({ dtype: 'int8', dims: [2] });
    expect(byName.get('conv1_bias_DequantizeLinear')).toMatchObject({
      inputs: ['conv1_bias_quantized', 'conv1_bias_scale'],
      outputs: ['conv1_bias'],
      attrs: { axis: 0 },
    });
    expect(byName.get('conv1')!.inputs).toEqual(['input_dequantized', 'w1', 'conv1_bias']);
    for (const t of ['input', 'c1', 'r1']) {
      expect(byName.get(`${t}_QuantizeLinear`), t).toMatchObject({
        inputs: [t, `${t}_scale`, `${t}_zero_point`],
        outputs: [`${t}_quantized`],
        attrs: {},
      });
      expect(byName.get(`${t}_DequantizeLinear`), t).toMatchObject({
        opType: 'DequantizeLinear',
        inputs: [`${t}_quantized`, `${t}_scale`, `${t}_zero_point`],
        outputs: [`${t}_dequantized`],
        attrs: {},
      });
      expect(graph.initializers.get(`${t}_zero_point`)).toMatchObject({ dtype: 'uint8', dims: [] });
      expect(codes.get(t)).toBe(`${t}_quantized`);
    }
    expect(graph.meta.producerName).toBe('quantization-playground');
    expect(graph.meta.metadataProps).toEqual([
      { key: 'author', value: 'a student' },
      {
        key: 'quantization',
        value: 'QDQ export for integer kernels (int32 biases, full-range 8-bit saturation)',
      },
    ]);
    // the Deployable's own graph is not changed
    expect(d.graph.nodes.map((n) => n.name)).toEqual(['conv1', 'relu6', 'conv2']);
    expect(d.graph.meta.metadataProps[0].value).toBe('an older note');
  });
});

describe('arithmeticLayer (the layer followed by hand)', () => {
  it('the first integer convolution of the plan, a grouped (depthwise) one first', () => {
    const d = tinyDeployable('unsigned');
    expect(arithmeticLayer(planIntegerKernels(d), d.graph)).toBe('conv1');
    const conv = (name: string, group: number) =>
      makeNode('Conv', ['x', `w_${name}`], [`y_${name}`], { group }, { name });
    const graph = makeGraph({
      opset: 13,
      inputs: [makeValueInfo('x', ['N', 4, 8, 8])],
      outputs: [makeValueInfo('y_c', ['N', 4, 8, 8])],
      initializers: [
        makeTensor('w_a', [4, 4, 1, 1], new Float32Array(16)),
        makeTensor('w_b', [4, 1, 1, 1], new Float32Array(4)),
        makeTensor('w_c', [4, 1, 1, 1], new Float32Array(4)),
      ],
      nodes: [conv('a', 1), conv('b', 4), conv('c', 4)],
    });
    const layer = (node: string, kernel: string) => ({ node, kernel, weight: {}, output: {} });
    const plan = {
      layers: [layer('f', 'float'), layer('a', 'QLinearConv'), layer('b', 'QLinearConv'), layer('c', 'QLinearConv')],
    } as unknown as IntegerPlan;
    expect(arithmeticLayer(plan, graph)).toBe('b');
    expect(arithmeticLayer({ layers: [layer('f', 'float')] } as unknown as IntegerPlan, graph)).toBeUndefined();
  });
});
