/**
 * The integer-kernel side of the export, on numbers and graphs only (no session): the
 * kernels' arithmetic (int32 bias, float32 requantization, fixed-point multiplier), one
 * output pixel computed by hand, and the integer plan/graph of a tiny Conv → ReLU6 → Conv
 * network (which ops fuse, the int32 bias, the output quantizer added before a ReLU6 the
 * signed quantizer does not cover, a bias too large for an int32).
 */
import { describe, expect, it } from 'vitest';
import {
  fixedPointMultiplier,
  outputMultiplier,
  quantizeBias,
  requantize,
  requantizeFixedPoint,
  roundingDivideByPot,
  roundingDoublingHighMul,
} from '../../src/lib/export/kernels.ts';
import { convPixel } from '../../src/lib/export/integer-arithmetic.ts';
import { type IntegerPlan, clipRedundant, planIntegerKernels } from '../../src/lib/export/integer-plan.ts';
import { arithmeticLayer } from '../../src/lib/export/deploy-check.ts';
import { buildIntegerQdq } from '../../src/lib/export/integer-qdq.ts';
import type { Deployable } from '../../src/lib/export/deployable.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { makeGraph, makeNode, makeTensor, makeValueInfo, producerOf } from '../../src/lib/onnx/ir.ts';
import type { QParams } from '../../src/lib/quant/types.ts';
import { mulberry32 } from '../../src/lib/util/random.ts';

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
