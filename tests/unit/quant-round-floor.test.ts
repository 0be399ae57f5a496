/**
 * The Round-free rounding steps of the WebGPU fake-quant form (quant/round-floor.ts) against
 * roundHalfToEven: ties at ±0.5, 1.5, 2.5, values a few float32 steps either side of every
 * tie, integer and binade edges, saturation (clamp first, then round), and random float32
 * values, under round-to-nearest and under the always-down / always-up rounding WGSL allows.
 */
import { describe, expect, it } from 'vitest';
import { roundHalfToEven } from '../../src/lib/quant/round.ts';
import {
  ROUND_FLOOR_LIMIT,
  ROUND_CONSTANTS,
  ROUND_STEPS,
  roundByFloorSteps,
  runRoundSteps,
  type Float32Rounding,
  type RoundStep,
} from '../../src/lib/quant/round-floor.ts';
import { mulberry32 } from '../../src/lib/util/random.ts';

const MODES: Float32Rounding[] = ['nearest', 'down', 'up'];
const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);

/** The float32 `k` steps away from float32 x (k may be negative), for x > 0. */
function stepsAway(x: number, k: number): number {
  f32[0] = x;
  i32[0] += k;
  return f32[0];
}

/** Equal as numbers (the steps give +0 for [−½, 0), where Round gives −0); NaN equals NaN. */
const same = (a: number, b: number) => a === b || (a !== a && b !== b);

function expectSame(values: number[]) {
  for (const how of MODES) {
    const bad = values.filter((c) => !same(roundByFloorSteps(c, how), roundHalfToEven(Math.fround(c))));
    expect(bad.slice(0, 5), `${bad.length} wrong under ${how} rounding`).toEqual([]);
  }
}

describe('round half to even from Floor/Add/Sub/Mul/Equal/Greater/Where', () => {
  it('rounds ties to the even neighbour', () => {
    const ties: [number, number][] = [
      [0.5, 0],
      [-0.5, 0],
      [1.5, 2],
      [-1.5, -2],
      [2.5, 2],
      [-2.5, -2],
      [3.5, 4],
      [126.5, 126],
      [127.5, 128],
      [-127.5, -128],
      [-128.5, -128],
      [32767.5, 32768],
      [-32768.5, -32768],
    ];
    for (const how of MODES)
      for (const [c, r] of ties) expect(roundByFloorSteps(c, how), `round(${c}), ${how}`).toBe(r);
  });

  it('gives +0 (not −0) for values in [−½, 0), as QuantizeLinear → DequantizeLinear', () => {
    for (const how of MODES)
      for (const c of [-0.5, -0.3, -(2 ** -25), -1e-30])
        expect(Object.is(roundByFloorSteps(c, how), 0), `${c}`).toBe(true);
    expect(Object.is(roundByFloorSteps(-0), -0)).toBe(true); // Floor keeps −0, as Round does
    expect(Object.is(roundHalfToEven(-0.3), -0)).toBe(true); // what Round gives; equal as numbers
  });

  it('agrees a few float32 steps either side of every tie and every whole number up to 300', () => {
    const values: number[] = [];
    for (let n = 0; n <= 300; n++) {
      for (const centre of [n, n + 0.5]) {
        if (centre === 0) continue;
        for (let k = -3; k <= 3; k++) values.push(stepsAway(centre, k), -stepsAway(centre, k));
      }
    }
    expectSame(values);
  });

  it('agrees at binade edges, at tiny values and up to the limit', () => {
    const values: number[] = [
      0,
      2 ** -149,
      -(2 ** -149),
      1e-40,
      -1e-40,
      0.5 + 2 ** -24,
      0.5 - 2 ** -25,
      -(0.5 - 2 ** -25),
    ];
    for (let e = -30; e <= 22; e++) {
      for (let k = -3; k <= 3; k++) values.push(stepsAway(2 ** e, k), -stepsAway(2 ** e, k));
    }
    for (let k = 0; k < 8; k++) values.push(stepsAway(ROUND_FLOOR_LIMIT, -k), -stepsAway(ROUND_FLOOR_LIMIT, -k));
    expectSame(values);
  });

  it('agrees on random float32 values of every magnitude below the limit', () => {
    const rng = mulberry32(7);
    const values: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const mag = 2 ** (rng() * 52 - 30); // 2^-30 … 2^22
      values.push(Math.fround((rng() < 0.5 ? -1 : 1) * Math.min(mag, ROUND_FLOOR_LIMIT)));
    }
    // values on the quarter grid: every tie and every whole number of the 16-bit range
    for (let i = 0; i < 5_000; i++) values.push((Math.floor(rng() * 4 * 65536) - 2 * 65536) / 4);
    expectSame(values);
  });

  it('saturates like Round followed by the clamp when the clamp comes first', () => {
    // the fake-quant chain: clamp to the integer bounds [lo, hi], then round (commutes with rounding)
    const [lo, hi] = [-128, 127];
    const clamp = (c: number) => Math.min(Math.max(c, lo), hi);
    for (const c of [-1e9, -128.6, -128.5, -128.4, 126.5, 127.4, 127.5, 127.6, 1e9, Infinity, -Infinity]) {
      expect(roundByFloorSteps(clamp(c)), `${c}`).toBe(clamp(roundHalfToEven(c)));
    }
  });

  it('passes NaN through', () => {
    expect(roundByFloorSteps(NaN)).toBeNaN();
  });

  it('uses only ops the WebGPU provider implements, each step reading earlier outputs', () => {
    const known = new Set(['c', ...Object.keys(ROUND_CONSTANTS)]);
    for (const s of ROUND_STEPS) {
      expect(['Add', 'Sub', 'Mul', 'Floor', 'Equal', 'Greater', 'Where']).toContain(s.op);
      for (const i of s.inputs) expect(known.has(i), `${s.output} reads ${i}`).toBe(true);
      known.add(s.output);
    }
  });
});

/**
 * The float32 rounding model itself: were 'down' and 'up' to round like 'nearest', the tests
 * above would hold for any recipe, exact or not. Expected values worked out by hand.
 */
describe('the float32 rounding the steps are checked under', () => {
  const one = (op: RoundStep['op'], a: string, b: string): RoundStep[] => [{ op, inputs: [a, b], output: 'r' }];
  const each = (steps: RoundStep[], c: number) => MODES.map((how) => runRoundSteps(steps, c, how));

  it('rounds an inexact sum to nearest, down or up (positive, negative, a tail below float64)', () => {
    // 1 + 2⁻³⁰: float32 neighbours 1 and 1 + 2⁻²³
    expect(each(one('Add', 'one', 'c'), 2 ** -30)).toEqual([1, 1, 1 + 2 ** -23]);
    expect(each(one('Add', 'one', 'c'), -(2 ** -30))).toEqual([1, 1 - 2 ** -24, 1]);
    // −(2²⁴ + 1.5): float32 neighbours −(2²⁴ + 2) and −2²⁴
    expect(each(one('Add', 'c', 'half'), -(2 ** 24 + 2))).toEqual([-(2 ** 24 + 2), -(2 ** 24 + 2), -(2 ** 24)]);
    // 1 ± 2⁻⁶⁰ is 1 in float64 too: only the sum's exact tail says which way it lies
    expect(each(one('Add', 'one', 'c'), 2 ** -60)).toEqual([1, 1, 1 + 2 ** -23]);
    expect(each(one('Sub', 'one', 'c'), 2 ** -60)).toEqual([1, 1 - 2 ** -24, 1]);
    // the float64 sum itself rounds, its tail the other way from where float32 rounds to:
    // 1 + 2⁻³⁰ + 3·2⁻⁵³ ties in float64 onto 1 + 2⁻³⁰ + 2⁻⁵¹ (tail −2⁻⁵³), float32 gives 1
    expect(each(one('Add', 'one', 'c'), (1 + 3 * 2 ** -23) * 2 ** -30)).toEqual([1, 1, 1 + 2 ** -23]);
    // 1 − 2⁻³¹ − 3·2⁻⁵⁴ ties in float64 one 2⁻⁵⁴ lower (tail +2⁻⁵⁴), float32 gives 1
    expect(each(one('Add', 'one', 'c'), -(1 + 3 * 2 ** -23) * 2 ** -31)).toEqual([1, 1 - 2 ** -24, 1]);
  });

  it('rounds an inexact product, down to zero and past the float32 range as IEEE does', () => {
    // (1 + 2⁻²³)² = 1 + 2⁻²² + 2⁻⁴⁶
    expect(each(one('Mul', 'c', 'c'), 1 + 2 ** -23)).toEqual([1 + 2 ** -22, 1 + 2 ** -22, 1 + 2 ** -22 + 2 ** -23]);
    // half of the smallest subnormal: a tie between 0 and 2⁻¹⁴⁹
    expect(each(one('Mul', 'c', 'half'), 2 ** -149)).toEqual([0, 0, 2 ** -149]);
    expect(each(one('Mul', 'c', 'half'), -(2 ** -149))).toEqual([-0, -(2 ** -149), -0]);
    // 2²⁰⁰ overflows: to +∞ when rounding to nearest or up, to the largest float32 when down
    const maxF32 = (2 - 2 ** -23) * 2 ** 127;
    expect(each(one('Mul', 'c', 'c'), 2 ** 100)).toEqual([Infinity, maxF32, Infinity]);
    expect(each(one('Mul', 'c', 'c'), 2 ** 100).map((x) => Math.fround(x) === x)).toEqual([true, true, true]);
  });

  it('shows a recipe that is not exact: floor(c + ½) rounds ½ − 2⁻²⁵ up to 1 unless the sum rounds down', () => {
    const naive: RoundStep[] = [
      { op: 'Add', inputs: ['c', 'half'], output: 't' },
      { op: 'Floor', inputs: ['t'], output: 'r' },
    ];
    const c = 0.5 - 2 ** -25;
    expect(roundHalfToEven(c)).toBe(0);
    expect(each(naive, c)).toEqual([1, 0, 1]);
    expect(MODES.map((how) => roundByFloorSteps(c, how))).toEqual([0, 0, 0]);
  });
});
