/**
 * Optimises one reconstruction unit (a layer or a block, units.ts) on the engine: the
 * soft rounding of its low-bit weights (soft-rounding.ts) and, when asked, the step sizes
 * of its activation quantizers (LSQ), against the FP32 unit's output on the calibration
 * images. Each step feeds a random mini-batch to the training graph (train-graph.ts),
 * reads back the loss gradients and takes an Adam step in TypeScript: the rounding
 * variables with the regulariser of annealed β after a warm-up (MQBench's LossFunction),
 * the step sizes with cosine-annealed step size (MQBench's scale_lr schedule). QDrop:
 * each step draws fresh masks; the unit's input is the quantized model's where its mask
 * keeps quantization and the FP32 model's where it drops it, and every quantizer inside
 * drops elements at random.
 *
 * Windows: where a unit's output is larger than WINDOW×WINDOW positions, a step trains on
 * a random window of each image (WINDOW×WINDOW outputs, the input window the unit's
 * stride times larger), and the graph computes the FP32 target on the same window of the
 * FP32 input, so both sides see the same borders. That bounds the cost of a step for
 * MobileNet-V2's 112×112 and 56×56 blocks near that of its 28×28 ones, where the
 * elementwise passes of fake quantization and its backward dominate.
 * Before and after, the whole calibration set runs through the unit's forward graph (hard
 * rounding, final step sizes), giving the error report and the quantized unit output
 * the next unit starts from. Checks the abort signal between steps.
 */
import { throwIfAborted } from '../util/errors.ts';
import type { QParams } from '../quant/types.ts';
import type { Engine, EngineSession, FloatTensor } from '../engine/types.ts';
import type { Graph } from '../onnx/ir.ts';
import { serializeModel } from '../onnx/model.ts';
import { ActivationSet } from './activation-set.ts';
import { tensorShapes } from './segments.ts';
import { Adam, cosineLr } from './adam.ts';
import { MaskRng } from './drop-mask.ts';
import { SoftRounding, beta } from './soft-rounding.ts';
import { buildUnitGraph, type UnitGraph, type UnitQuantizer } from './train-graph.ts';
import type { ReconUnit } from './units.ts';

/** Optimisation settings of one unit. */
export interface UnitTraining {
  iters: number;
  /** images per step */
  batch: number;
  seed: number;
  /** rounding regulariser weight (MQBench 0.01), β range and warm-up fraction (20 → 2, 0.2) */
  lambda: number;
  betaStart: number;
  betaEnd: number;
  warmup: number;
  /** Adam step size of the rounding variables, and the initial one of the step sizes */
  lrRounding: number;
  lrScale: number;
  /** QDrop: probability of keeping an element quantized; null: never dropped */
  keep: number | null;
  /** images per chunk of the full passes */
  evalBatch: number;
  signal?: AbortSignal;
  /** after each step (1-based) */
  onStep?: (step: number) => void;
}

/** A low-bit weight the unit learns the rounding of (or, when `learn` is false, keeps as `values`). */
export interface UnitWeightInput {
  values: Float32Array;
  dims: readonly number[];
  qparams: QParams;
  /** the float weights the rounding starts from (learned weights only) */
  float?: Float32Array;
  learn: boolean;
}

export interface UnitActivationInput {
  qparams: QParams;
  learn: boolean;
}

export interface UnitData {
  /** the unit's input as the quantized model computes it (or the FP32 one, with FP32 inputs) */
  input: ActivationSet;
  /** the unit's input in the FP32 model: the training target is the FP32 unit on it */
  fpInput: ActivationSet;
  /** the FP32 unit's output on whole images (for the error before and after) */
  target: ActivationSet;
  /** QDrop: mix the quantized model's input with the FP32 model's where quantization is dropped */
  mixInput: boolean;
}

/** Output positions per side of a training window (see the module header). */
export const WINDOW = 28;

/** Where to cut a step's window: input side, stride to the output, and whether to cut at all. */
interface Window {
  side: number;
  stride: number;
}

/** The window of a unit whose input and output are [C, H, W] maps, or null for whole images. */
export function windowOf(inDims: readonly number[], outDims: readonly number[], side = WINDOW): Window | null {
  if (inDims.length !== 3 || outDims.length !== 3) return null;
  const [, H, W] = inDims;
  const [, Ho, Wo] = outDims;
  if (Ho <= side && Wo <= side) return null;
  const stride = H / Ho;
  if (!Number.isInteger(stride) || W / Wo !== stride || H !== W) return null;
  return { side: Math.min(H, side * stride), stride };
}

/** Copies a window of image `img` (dims [C, H, W]) at (oy, ox) of side `side` into `out` at `offset`. */
export function copyWindow(
  set: ActivationSet,
  img: number,
  oy: number,
  ox: number,
  side: number,
  whole: Float32Array,
  out: Float32Array,
  offset: number,
): void {
  const [C, H, W] = set.dims;
  set.copyImage(img, whole, 0);
  let o = offset;
  for (let c = 0; c < C; c++)
    for (let y = 0; y < side; y++) {
      const from = (c * H + oy + y) * W + ox;
      out.set(whole.subarray(from, from + side), o);
      o += side;
    }
}

export interface UnitOutcome {
  /** final fake-quantized values of the learned weights */
  values: Map<string, Float32Array>;
  /** fraction of weights rounded away from nearest, per learned weight */
  flips: Map<string, number>;
  /** final step size per learned quantizer */
  scales: Map<string, number>;
  /** ‖y − y_fp‖² / ‖y_fp‖² over the calibration images, before (as quantized on entry) and after */
  errorBefore: number;
  errorAfter: number;
  /** the unit's output in the quantized model after reconstruction */
  output: ActivationSet;
  /** mean training loss of the first and the last tenth of the steps */
  lossStart: number;
  lossEnd: number;
  /** the learned result was worse than the entry's on the calibration images, so the entry's is kept */
  keptEntry: boolean;
}

/** Draws `k` indices below `n`: distinct when k ≤ n, each image ⌊k/n⌋ or ⌈k/n⌉ times otherwise. */
function sample(rng: MaskRng, n: number, k: number, scratch: Int32Array): number[] {
  const out: number[] = [];
  while (out.length < k) {
    for (let i = 0; i < n; i++) scratch[i] = i;
    const take = Math.min(n, k - out.length);
    for (let i = 0; i < take; i++) {
      const j = i + rng.below(n - i);
      const t = scratch[i];
      scratch[i] = scratch[j];
      scratch[j] = t;
      out.push(scratch[i]);
    }
  }
  return out;
}

/** One full pass of the forward graph: Σ squared error and the unit's quantized output. */
async function fullPass(
  session: EngineSession,
  ug: UnitGraph,
  unit: ReconUnit,
  data: UnitData,
  fixed: Record<string, FloatTensor>,
  signal: AbortSignal | undefined,
  keepOutput: boolean,
): Promise<{ sse: number; output?: ActivationSet }> {
  let sse = 0;
  const target = data.target.batches();
  let output: ActivationSet | undefined;
  for (const x of data.input.batches()) {
    throwIfAborted(signal);
    const t = target.next().value as FloatTensor;
    const res = await session.run({ ...fixed, [unit.input]: x, [ug.target]: t }, [
      ug.sse,
      ...(keepOutput ? [ug.output] : []),
    ]);
    sse += res[ug.sse].data[0];
    if (keepOutput) {
      const y = res[ug.output];
      output ??= new ActivationSet(y.dims.slice(1));
      output.push(y);
    }
  }
  return { sse, output };
}

const scalar = (v: number): FloatTensor => ({ data: Float32Array.of(v), dims: [] });

/** Optimises one unit (see the module header). `source` is the FP32 graph at opset ≥ 11. */
export async function trainUnit(
  engine: Engine,
  source: Graph,
  unit: ReconUnit,
  weights: ReadonlyMap<string, UnitWeightInput>,
  activations: ReadonlyMap<string, UnitActivationInput>,
  data: UnitData,
  opts: UnitTraining,
): Promise<UnitOutcome> {
  const drop = opts.keep !== null;
  const quantizers = (withDrop: boolean) =>
    new Map<string, UnitQuantizer>(
      [...activations].map(([t, a]) => [t, { qparams: a.qparams, learn: a.learn, drop: withDrop }]),
    );
  const weightSpec = new Map([...weights].map(([k, w]) => [k, { values: w.values, learn: w.learn }]));
  const common = { source, nodes: unit.nodes, input: unit.input, output: unit.output, weights: weightSpec };
  const fullShapes = await tensorShapes(engine, source, unit.nodes, unit.input, data.fpInput.gather([0]));
  const win = windowOf(data.input.dims, fullShapes.get(unit.output)!);
  const stepDims = win ? [data.input.dims[0], win.side, win.side] : [...data.input.dims];
  const shapes = win
    ? await tensorShapes(engine, source, unit.nodes, unit.input, {
        data: new Float32Array(stepDims.reduce((x, y) => x * y, 1)),
        dims: [1, ...stepDims],
      })
    : fullShapes;
  const evalGraph = buildUnitGraph({
    ...common,
    shapes: fullShapes,
    batch: null,
    quantizers: quantizers(false),
    backward: false,
  });
  const trainGraph = buildUnitGraph({
    ...common,
    shapes,
    batch: opts.batch,
    quantizers: quantizers(drop),
    backward: true,
    fpTarget: true,
  });

  const learned = [...weights].filter(([, w]) => w.learn);
  const rounding = new Map(learned.map(([k, w]) => [k, new SoftRounding(w.float!, w.dims, w.qparams)]));
  const scales = new Map(
    [...activations].filter(([, a]) => a.learn).map(([t, a]) => [t, Float64Array.of(a.qparams.scale[0])]),
  );
  const feedsOf = (values: (k: string) => Float32Array): Record<string, FloatTensor> => {
    const f: Record<string, FloatTensor> = {};
    for (const [k, w] of learned) f[k] = { data: values(k), dims: [...w.dims] };
    for (const [t, sc] of scales) f[evalGraph.scaleInputs.get(t)!] = scalar(sc[0]);
    return f;
  };

  const evalSession = await engine.createSession(serializeModel(evalGraph.graph));
  try {
    const energy = data.target.energy() || 1;
    const before = await fullPass(
      evalSession,
      evalGraph,
      unit,
      data,
      feedsOf((k) => weights.get(k)!.values),
      opts.signal,
      true,
    );
    const startScales = new Map([...scales].map(([t, sc]) => [t, sc[0]]));

    const trainSession = await engine.createSession(serializeModel(trainGraph.graph));
    const losses: number[] = [];
    try {
      const rng = new MaskRng(opts.seed);
      const n = data.input.count;
      const scratch = new Int32Array(n);
      const per = stepDims.reduce((x, y) => x * y, 1);
      const xBuf = new Float32Array(opts.batch * per);
      const fpBuf = new Float32Array(opts.batch * per);
      const whole = win ? new Float32Array(data.input.perImage) : undefined;
      const masks = new Map(
        [...trainGraph.maskInputs].map(([t, name]) => [
          t,
          { name, data: new Float32Array(opts.batch * (shapes.get(t) ?? []).reduce((x, y) => x * y, 1)) },
        ]),
      );
      const soft = new Map(learned.map(([k, w]) => [k, new Float32Array(w.values.length)]));
      const grad = new Map(learned.map(([k, w]) => [k, new Float32Array(w.values.length)]));
      const adamV = new Map(learned.map(([k, w]) => [k, new Adam(w.values.length)]));
      const adamS = new Map([...scales.keys()].map((t) => [t, new Adam(1)]));
      const fetches = [
        trainGraph.loss!,
        ...[...trainGraph.weightGrads.values()],
        ...[...trainGraph.scaleGrads.values()],
      ];
      const inputMask = masks.get(unit.input);
      const ownMask = data.mixInput && !inputMask ? new Float32Array(xBuf.length) : undefined;
      const dims = [opts.batch, ...stepDims];
      for (let step = 0; step < opts.iters; step++) {
        throwIfAborted(opts.signal);
        const idx = sample(rng, n, opts.batch, scratch);
        if (win && whole) {
          const span = data.input.dims[1] - win.side;
          idx.forEach((img, j) => {
            const oy = win.stride * rng.below(Math.floor(span / win.stride) + 1);
            const ox = win.stride * rng.below(Math.floor(span / win.stride) + 1);
            copyWindow(data.input, img, oy, ox, win.side, whole, xBuf, j * per);
            copyWindow(data.fpInput, img, oy, ox, win.side, whole, fpBuf, j * per);
          });
        } else {
          data.input.gather(idx, xBuf);
          data.fpInput.gather(idx, fpBuf);
        }
        for (const m of masks.values()) rng.fillMask(m.data, opts.keep!);
        if (data.mixInput) {
          // QDrop's input: the quantized model's value where the input quantizer keeps
          // quantization, the FP32 model's where it drops it (one mask for both)
          const m = inputMask?.data ?? ownMask!;
          if (ownMask) rng.fillMask(ownMask, opts.keep!);
          for (let i = 0; i < xBuf.length; i++) if (!m[i]) xBuf[i] = fpBuf[i];
        }
        const feeds: Record<string, FloatTensor> = {
          [unit.input]: { data: xBuf, dims },
          [trainGraph.fpInput!]: { data: fpBuf, dims },
        };
        for (const [k, r] of rounding) {
          r.soft(soft.get(k)!);
          feeds[k] = { data: soft.get(k)!, dims: [...weights.get(k)!.dims] };
        }
        for (const [t, sc] of scales) feeds[trainGraph.scaleInputs.get(t)!] = scalar(sc[0]);
        for (const [t, m] of masks) feeds[m.name] = { data: m.data, dims: [opts.batch, ...(shapes.get(t) ?? [])] };
        const res = await trainSession.run(feeds, fetches);
        losses.push(res[trainGraph.loss!].data[0]);
        const regOn = step >= opts.warmup * opts.iters;
        const b = regOn ? beta(step, opts.iters, opts.betaStart, opts.betaEnd, opts.warmup) : null;
        for (const [k, r] of rounding) {
          const g = grad.get(k)!;
          r.gradient(res[trainGraph.weightGrads.get(k)!].data, b, opts.lambda, g);
          adamV.get(k)!.step(r.v, g, opts.lrRounding);
        }
        const lrS = cosineLr(opts.lrScale, step, opts.iters);
        for (const [t, sc] of scales) {
          adamS.get(t)!.step(sc, res[trainGraph.scaleGrads.get(t)!].data, lrS);
          // a step size must stay positive (QDrop takes |s| and clamps it at float eps)
          sc[0] = Math.max(Math.abs(sc[0]), 1.1920928955078125e-7);
        }
        opts.onStep?.(step + 1);
      }
    } finally {
      await trainSession.release();
    }

    const values = new Map([...rounding].map(([k, r]) => [k, r.hardValues()]));
    const after = await fullPass(
      evalSession,
      evalGraph,
      unit,
      data,
      feedsOf((k) => values.get(k) ?? weights.get(k)!.values),
      opts.signal,
      true,
    );
    const tenth = Math.max(1, Math.floor(losses.length / 10));
    const mean = (a: number[]) => (a.length ? a.reduce((x, v) => x + v, 0) / a.length : NaN);
    const lossStart = mean(losses.slice(0, tenth));
    const lossEnd = mean(losses.slice(-tenth));
    if (after.sse > before.sse) {
      // the optimisation ended above where it started (a short or noisy run on a unit
      // already near its best): the unit keeps its entry rounding and step sizes, so a
      // reconstruction never leaves a unit worse than it found it
      return {
        values: new Map(learned.map(([k]) => [k, weights.get(k)!.values])),
        flips: new Map(learned.map(([k]) => [k, 0])),
        scales: startScales,
        errorBefore: before.sse / energy,
        errorAfter: before.sse / energy,
        output: before.output!,
        lossStart,
        lossEnd,
        keptEntry: true,
      };
    }
    return {
      values,
      flips: new Map([...rounding].map(([k, r]) => [k, r.flips()])),
      scales: new Map([...scales].map(([t, sc]) => [t, Math.fround(sc[0])])),
      errorBefore: before.sse / energy,
      errorAfter: after.sse / energy,
      output: after.output!,
      lossStart,
      lossEnd,
      keptEntry: false,
    };
  } finally {
    await evalSession.release();
  }
}
