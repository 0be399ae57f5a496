/**
 * Round half to even from Floor, Add, Sub, Mul, Equal, Greater and Where: the rounding of the fake-quant
 * graphs that run on WebGPU, whose onnxruntime provider has no kernel for ONNX `Round` (nor
 * for QuantizeLinear), so a Round node runs on the CPU with a copy each way.
 *
 * The recipe is data (ROUND_STEPS): src/lib/onnx/fq-floor.ts emits one ONNX node per step,
 * and `roundByFloorSteps` evaluates the same steps with float32 semantics, so the unit tests
 * check the very sequence the graph runs against `roundHalfToEven`.
 *
 * Why it is exact for a float32 `c` with |c| ≤ ROUND_FLOOR_LIMIT (the fake-quant chain clamps
 * to its integer bounds first, which commutes with rounding): with f = ⌊c⌋ and d = c − f,
 * rne(c) is f + 1 when d > ½, the even one of f and f + 1 (2·⌊(f + 1)·½⌋) when d = ½, else f.
 * Every step is exact in float32: Floor always; c − f by Sterbenz's lemma (f and c are within
 * a factor of two, or f = 0) except for c in (−½, 0), where every branch gives 0 whatever
 * d rounds to; f + 1, (f + 1)·½ and the sum of two halves are small whole numbers or halves.
 * So the steps give rne(c) with round-to-nearest arithmetic (wasm) and with the
 * either-neighbour rounding WGSL allows. (Adding ½ and taking the floor is shorter but not
 * exact: c + ½ rounds onto 1 for c = ½ + 2⁻²⁴ and, rounding up, for c = ½ − 2⁻²⁵.)
 * One difference from `roundHalfToEven`: c in [−½, 0) gives +0, not −0 (as QuantizeLinear
 * → DequantizeLinear does); the two compare equal.
 * Must not: import ONNX, ORT or anything outside this folder.
 */

/** The largest |c| for which the steps are exact (f + 1 and its half stay exact far beyond). */
export const ROUND_FLOOR_LIMIT = 2 ** 22;

export type RoundStepOp = 'Add' | 'Sub' | 'Mul' | 'Floor' | 'Equal' | 'Greater' | 'Where';

/** The constants the steps read besides 'c', the value to round. */
export const ROUND_CONSTANTS = { half: 0.5, one: 1 } as const;

export interface RoundStep {
  op: RoundStepOp;
  /** names of earlier outputs, 'c' (the value) or a ROUND_CONSTANTS key */
  inputs: readonly string[];
  output: string;
}

/** rne(c) as ONNX element-wise ops; the last step's output is the rounded value. */
export const ROUND_STEPS: readonly RoundStep[] = [
  { op: 'Floor', inputs: ['c'], output: 'f' },
  { op: 'Sub', inputs: ['c', 'f'], output: 'd' },
  { op: 'Add', inputs: ['f', 'one'], output: 'next' },
  { op: 'Greater', inputs: ['d', 'half'], output: 'above' },
  { op: 'Equal', inputs: ['d', 'half'], output: 'tie' },
  { op: 'Mul', inputs: ['next', 'half'], output: 'h' },
  { op: 'Floor', inputs: ['h'], output: 'hf' },
  { op: 'Add', inputs: ['hf', 'hf'], output: 'even' },
  { op: 'Where', inputs: ['tie', 'even', 'f'], output: 'low' },
  { op: 'Where', inputs: ['above', 'next', 'low'], output: 'r' },
];

/** How each float32 Add and Mul rounds: to nearest (IEEE, wasm), or always down or up (WGSL allows either). */
export type Float32Rounding = 'nearest' | 'down' | 'up';

const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);

/** The float32 next to finite float32 `x` towards +∞ (dir 1) or −∞ (dir −1). */
function nextFloat32(x: number, dir: 1 | -1): number {
  if (x === 0) return dir * 2 ** -149;
  f32[0] = x;
  // x ≠ 0 here and dir is ±1, so neither comparison meets its bound
  // Stryker disable next-line EqualityOperator: see above
  i32[0] += x > 0 === dir > 0 ? 1 : -1;
  return f32[0];
}

/**
 * The exact value s + e (|e| tiny against s) rounded to a float32 the given way. Past the
 * float32 range, rounding towards zero gives the largest finite float32, as IEEE does.
 */
function toFloat32(s: number, e: number, how: Float32Rounding): number {
  const f = Math.fround(s);
  // Stryker disable next-line ConditionalExpression: a shortcut; for 'nearest' the lines below return f as well
  if (how === 'nearest') return f;
  const above = f > s || (f === s && e < 0);
  const below = f < s || (f === s && e > 0);
  if (how === 'down' && above) return nextFloat32(f, -1);
  if (how === 'up' && below) return nextFloat32(f, 1);
  return f;
}

/** a + b of two float32 values, rounded as asked (TwoSum keeps the exact sum). */
function add32(a: number, b: number, how: Float32Rounding): number {
  const s = a + b;
  const bb = s - a;
  return toFloat32(s, a - (s - bb) + (b - bb), how);
}

/**
 * ROUND_STEPS evaluated on one float32 value with the ONNX ops' float32 semantics: each Add
 * and Mul rounded to float32 as `how` says (a product of two float32 values is exact in
 * float64, a sum is kept exact by TwoSum). Equals roundHalfToEven(c) for |c| ≤
 * ROUND_FLOOR_LIMIT under every `how`, except +0 for c in [−½, 0) (−0 stays −0); NaN stays NaN.
 * Never throws.
 */
export function roundByFloorSteps(c: number, how: Float32Rounding = 'nearest'): number {
  return runRoundSteps(ROUND_STEPS, c, how);
}

/**
 * Any list of steps (the shape of ROUND_STEPS) evaluated on float32 `c` as roundByFloorSteps
 * does: how a recipe behaves under each float32 rounding, so one that is not exact shows.
 * Returns the last step's output. Never throws.
 */
export function runRoundSteps(steps: readonly RoundStep[], c: number, how: Float32Rounding = 'nearest'): number {
  const v = new Map<string, number | boolean>([['c', Math.fround(c)], ...Object.entries(ROUND_CONSTANTS)]);
  const num = (name: string) => v.get(name) as number;
  for (const s of steps) {
    const [a, b, d] = s.inputs;
    switch (s.op) {
      case 'Add':
        v.set(s.output, add32(num(a), num(b), how));
        break;
      case 'Sub':
        v.set(s.output, add32(num(a), -num(b), how));
        break;
      case 'Mul':
        v.set(s.output, toFloat32(num(a) * num(b), 0, how));
        break;
      case 'Floor':
        v.set(s.output, Math.floor(num(a)));
        break;
      case 'Equal':
        v.set(s.output, num(a) === num(b));
        break;
      case 'Greater':
        v.set(s.output, num(a) > num(b));
        break;
      case 'Where':
        v.set(s.output, v.get(a) ? num(b) : num(d));
        break;
    }
  }
  return num(steps[steps.length - 1].output);
}
