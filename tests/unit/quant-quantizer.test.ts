import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { QpError } from '../../src/lib/util/errors.ts';
import {
  channelCount,
  channelLayout,
  computeQParams,
  dequantize,
  fakeQuantize,
  fakeQuantizeInPlace,
  fakeQuantizeValue,
  forEachChannelRun,
  qRange,
  quantizeToInt,
  SCALE_EPS,
} from '../../src/lib/quant/quantizer.ts';
import { roundHalfToEven } from '../../src/lib/quant/round.ts';
import type { QParams, QuantSpec } from '../../src/lib/quant/types.ts';
import { expectExact, spec } from '../support/quant-helpers.ts';

interface GoldenCase {
  name: string;
  note: string;
  spec: QuantSpec;
  range: { min: number[]; max: number[] };
  expect: { scale: number[]; zeroPoint: number[]; qmin: number; qmax: number };
  dims: number[];
  x: number[];
  codes: number[];
  y: number[];
}

const golden = JSON.parse(readFileSync(new URL('../fixtures/quant/golden.json', import.meta.url), 'utf8')) as {
  cases: GoldenCase[];
};

describe('golden vectors', () => {
  it('has the cases the brief asks for', () => {
    expect(golden.cases.length).toBeGreaterThanOrEqual(12);
  });
  for (const c of golden.cases) {
    describe(c.name, () => {
      const qp = computeQParams({ min: Float32Array.from(c.range.min), max: Float32Array.from(c.range.max) }, c.spec);
      it('computes the hand-derived scale and zero point', () => {
        expectExact(qp.scale, c.expect.scale, 'scale');
        expectExact(qp.zeroPoint, c.expect.zeroPoint, 'zeroPoint');
        expect([qp.qmin, qp.qmax]).toEqual([c.expect.qmin, c.expect.qmax]);
        expect(qp.axis).toBe(c.spec.granularity === 'per-channel' ? c.spec.axis : -1);
      });
      const x = Float32Array.from(c.x);
      it('fake-quantizes onto the expected integer codes', () => {
        // y = (code − zp)·s exactly up to float32 rounding, so y/s rounds back to the code
        const y = fakeQuantize(x, c.dims, qp);
        const axis = qp.axis;
        const inner = axis < 0 ? y.length : c.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
        const codes = Array.from(y, (v, i) => {
          const ch = axis < 0 ? 0 : Math.floor(i / inner) % c.dims[axis];
          return roundHalfToEven(v / qp.scale[ch]) + qp.zeroPoint[ch] + 0;
        });
        expect(codes).toEqual(c.codes);
      });
      it('fake-quantizes to the expected float32 values', () => {
        expectExact(fakeQuantize(x, c.dims, qp), Float32Array.from(c.y), 'y');
      });
      it('agrees with the in-place variant', () => {
        const copy = Float32Array.from(x);
        const ret = fakeQuantizeInPlace(copy, c.dims, qp);
        expect(ret).toBe(copy);
        expectExact(copy, Float32Array.from(c.y), 'in-place');
      });
    });
  }
});

describe('qRange', () => {
  it('gives signed, narrow and unsigned ranges', () => {
    expect(qRange(spec())).toEqual({ qmin: -128, qmax: 127 });
    expect(qRange(spec({ narrowRange: true }))).toEqual({ qmin: -127, qmax: 127 });
    expect(qRange(spec({ signed: false }))).toEqual({ qmin: 0, qmax: 255 });
    expect(qRange(spec({ signed: false, narrowRange: true }))).toEqual({ qmin: 0, qmax: 255 });
    expect(qRange(spec({ bits: 2 }))).toEqual({ qmin: -2, qmax: 1 });
    expect(qRange(spec({ bits: 16, signed: false }))).toEqual({ qmin: 0, qmax: 65535 });
  });

  it('rejects bit widths outside 2..16 with CONFIG_INVALID', () => {
    for (const bits of [1, 17, 0, 8.5, NaN]) {
      let err: unknown;
      try {
        qRange(spec({ bits }));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(QpError);
      expect((err as QpError).code).toBe('CONFIG_INVALID');
      expect((err as QpError).message).toMatch(/2 to 16/);
    }
  });
});

describe('computeQParams', () => {
  it('widens the range to include zero', () => {
    // asymmetric uint8 on [2, 4.25]: widened to [0, 4.25] -> s = 4.25/255, zp 0
    const qp = computeQParams(
      { min: Float32Array.of(2), max: Float32Array.of(4.25) },
      spec({ signed: false, symmetric: false }),
    );
    expect(qp.scale[0]).toBe(Math.fround(4.25 / 255));
    expect(qp.zeroPoint[0]).toBe(0);
  });

  it('floors the scale of an all-zero channel at float32 eps', () => {
    const qp = computeQParams(
      { min: Float32Array.of(0, -1), max: Float32Array.of(0, 1) },
      spec({ granularity: 'per-channel', axis: 0 }),
    );
    expect(qp.scale[0]).toBe(SCALE_EPS);
    expect(SCALE_EPS).toBe(Math.fround(1.1920929e-7));
    const y = fakeQuantize(Float32Array.of(0, 0, 0.5, -1), [2, 2], qp);
    // channel 1: s = fround(1/127.5) is a hair above 1/127.5, so -1/s rounds to -127 (not -128)
    expect(Array.from(y)).toEqual([0, 0, Math.fround(64 * qp.scale[1]), Math.fround(-127 * qp.scale[1])]);
  });

  it('clamps the zero point into [qmin, qmax]', () => {
    // all-positive range: zp = 0 - round(0/s) = 0 ; all-negative range: zp = 255 (max widened to 0)
    const qp = computeQParams(
      { min: Float32Array.of(-10), max: Float32Array.of(-5) },
      spec({ signed: false, symmetric: false }),
    );
    expect(qp.zeroPoint[0]).toBe(255);
  });

  it('clamps a zero point that a power-of-two scale pushes above qmax', () => {
    // [-10, 0.1] uint8: s = 10.1/255 ≈ 0.0396 → 2^-5 = 0.03125, so 0 - round(-10/0.03125) = 320 > 255
    const qp = computeQParams(
      { min: Float32Array.of(-10), max: Float32Array.of(0.1) },
      spec({ signed: false, symmetric: false, powerOfTwo: true }),
    );
    expect(qp.scale[0]).toBe(2 ** -5);
    expect(qp.zeroPoint[0]).toBe(255);
  });

  it('rejects per-tensor specs with several channels and NaN ranges', () => {
    expect(() => computeQParams({ min: Float32Array.of(0, 1), max: Float32Array.of(1, 2) }, spec())).toThrow(QpError);
    expect(() => computeQParams({ min: Float32Array.of(NaN), max: Float32Array.of(1) }, spec())).toThrow(/NaN/);
  });

  it('rejects a range whose min and max differ in length, or are empty, naming both lengths', () => {
    const pc = spec({ granularity: 'per-channel', axis: 0 });
    expect(() => computeQParams({ min: Float32Array.of(-1, -1), max: Float32Array.of(1) }, pc)).toThrow(
      /non-empty min and max arrays \(got 2 and 1\)/,
    );
    expect(() => computeQParams({ min: Float32Array.of(-1), max: Float32Array.of(1, 1) }, pc)).toThrow(
      /\(got 1 and 2\)/,
    );
    expect(() => computeQParams({ min: new Float32Array(0), max: new Float32Array(0) }, pc)).toThrow(/\(got 0 and 0\)/);
  });
});

describe('forEachChannelRun', () => {
  it('visits each contiguous run once, in memory order, and nothing past the tensor', () => {
    const runs: [number, number, number][] = [];
    forEachChannelRun(channelLayout([2, 3, 2], 1, 12), (c, start, end) => runs.push([c, start, end]));
    expect(runs).toEqual([
      [0, 0, 2],
      [1, 2, 4],
      [2, 4, 6],
      [0, 6, 8],
      [1, 8, 10],
      [2, 10, 12],
    ]);
  });
});

describe('fakeQuantize', () => {
  const qp: QParams = { scale: Float32Array.of(0.5), zeroPoint: Int32Array.of(0), qmin: -128, qmax: 127, axis: -1 };

  it('keeps NaN as NaN and -0 as -0 (like the ONNX graph)', () => {
    const y = fakeQuantize(Float32Array.of(NaN, -0.1, 0.1), [3], qp);
    expect(y[0]).toBeNaN();
    expect(Object.is(y[1], -0)).toBe(true);
    expect(Object.is(y[2], 0)).toBe(true);
  });

  it('checks shape and parameter counts', () => {
    expect(() => fakeQuantize(new Float32Array(5), [2, 3], qp)).toThrow(/6 values/);
    const pc: QParams = { ...qp, axis: 1 };
    expect(() => fakeQuantize(new Float32Array(6), [2, 3], pc)).toThrow(/1 scales for 3/);
    expect(() => fakeQuantize(new Float32Array(6), [2, 3], { ...qp, axis: 2 })).toThrow(/axis 2/);
    // one scale for three channels with three zero points, and the reverse: refused by every entry point
    const oneScale: QParams = { ...qp, axis: 1, zeroPoint: Int32Array.of(0, 0, 0) };
    expect(() => fakeQuantize(new Float32Array(6), [2, 3], oneScale)).toThrow(/1 scales for 3/);
    expect(() => quantizeToInt(new Float32Array(6), [2, 3], oneScale)).toThrow(QpError);
    expect(() => dequantize(new Int32Array(6), [2, 3], oneScale)).toThrow(QpError);
    const oneZp: QParams = { ...qp, axis: 1, scale: Float32Array.of(1, 1, 1) };
    expect(() => fakeQuantize(new Float32Array(6), [2, 3], oneZp)).toThrow(QpError);
    expect(() => quantizeToInt(new Float32Array(6), [2, 3], oneZp)).toThrow(QpError);
    expect(() => dequantize(new Int32Array(6), [2, 3], oneZp)).toThrow(QpError);
  });

  it('uses per-channel strides on a 4-D conv weight (axis 0) and activation-like axis 1', () => {
    // dims [2,2,1,2]; channel c of axis 1 has scale c+1; values chosen as exact multiples.
    const q1: QParams = {
      scale: Float32Array.of(1, 2),
      zeroPoint: Int32Array.of(0, 0),
      qmin: -128,
      qmax: 127,
      axis: 1,
    };
    const x = Float32Array.of(0.75, 1.25, 2.9, 3.1, -0.75, -1.25, -2.9, -3.1);
    // layout (o, c, i): o0c0 = [0.75, 1.25] s1 -> [1, 1]; o0c1 = [2.9, 3.1] s2 -> [1.45->1, 1.55->2]*2 = [2, 4]
    //                   o1c0 = [-0.75,-1.25] -> [-1, -1]; o1c1 = [-2.9,-3.1] -> [-2, -4]
    expect(Array.from(fakeQuantize(x, [2, 2, 1, 2], q1))).toEqual([1, 1, 2, 4, -1, -1, -2, -4]);
  });

  it('fake-quantizes a 4M-value tensor in place exactly like the per-value formula', () => {
    const n = 1 << 22;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = Math.sin(i) * 3;
    const ref = Float32Array.from(x);
    fakeQuantizeInPlace(x, [n], qp);
    const bad: number[] = [];
    for (let i = 0; i < n; i += 997) if (!Object.is(x[i], fakeQuantizeValue(ref[i], qp))) bad.push(i);
    expect(bad).toEqual([]);
    expect(new Set(x).size).toBeLessThanOrEqual(qp.qmax - qp.qmin + 1);
  });
});

describe('channelCount', () => {
  it('returns dims[axis] and rejects bad axes', () => {
    expect(channelCount([32, 3, 3, 3], 0)).toBe(32);
    expect(channelCount([1280, 1000], 1)).toBe(1000);
    expect(() => channelCount([4, 4], 2)).toThrow(QpError);
    expect(() => channelCount([4, 4], -1)).toThrow(QpError);
  });
});
