/**
 * The deployed evaluation: the integer export (integer-qdq.ts) run the way a deployment
 * runs it — an onnxruntime session with its default optimizations, which fuse the QDQ
 * groups into integer kernels — on the simulated run's own evaluation images. Gives the
 * deployed top-1/top-5, its top-1 agreement with the simulation, the deployed model's speed
 * against the FP32 model on the same engine, (from a graph onnxruntime wrote after
 * optimizing) which integer kernels the session really runs against what the plan says,
 * and one layer's outputs recomputed by hand against the codes its kernel wrote.
 *
 * Engine work only through the Engine interface; no file system (the caller reads an
 * optimized model file when the engine can write one).
 */
import type { Engine, FloatTensor } from '../engine/types.ts';
import { evaluate } from '../experiment/evaluate.ts';
import { batches } from '../experiment/batches.ts';
import type { QuantizedRun } from '../experiment/types.ts';
import type { Graph } from '../onnx/ir.ts';
import { serializeModel } from '../onnx/model.ts';
import { agreement } from '../quant/metrics.ts';
import { checkpoint } from '../util/checkpoint.ts';
import { QpError } from '../util/errors.ts';
import { median } from '../util/median.ts';
import { deployedProbes, fetchCodes } from './divergence.ts';
import { displayName, layerNames } from '../onnx/layer-names.ts';
import type { LayerArithmetic } from '../protocol/deploy.ts';
import { type IntegerConv, convPixel } from './integer-arithmetic.ts';
import type { IntegerKernel, IntegerPlan } from './integer-plan.ts';
import type { IntegerQdqModel } from './integer-qdq.ts';

export interface SpeedComparison {
  /** median milliseconds per image of each model, same engine, same batch */
  fp32MsPerImage: number;
  deployedMsPerImage: number;
  /** deployed / FP32 time (below 1: the deployed model is faster) */
  ratio: number;
  rounds: number;
  batch: number;
}

export interface DeployedEvaluation {
  n: number;
  /** fractions */
  top1: number;
  top5: number;
  /** share of images whose deployed top-1 equals the simulation's */
  agreement: number;
  /** deployed top-1 class per image */
  preds: Int32Array;
  speed?: SpeedComparison;
}

/**
 * Median time per image of each model over `rounds` alternating runs of one batch (after
 * one warm-up run each), so both models see the same machine load.
 */
export async function compareSpeed(
  engine: Engine,
  models: { fp32: Uint8Array; deployed: Uint8Array },
  batch: FloatTensor,
  rounds = 5,
): Promise<SpeedComparison> {
  const fp32 = await engine.createSession(models.fp32);
  const deployed = await engine.createSession(models.deployed);
  try {
    const time = async (s: typeof fp32) => {
      const t0 = performance.now();
      await s.run({ [s.inputNames[0]]: batch }, [s.outputNames[0]]);
      return performance.now() - t0;
    };
    await time(fp32);
    await time(deployed);
    const a: number[] = [];
    const b: number[] = [];
    for (let r = 0; r < rounds; r++) {
      a.push(await time(fp32));
      b.push(await time(deployed));
    }
    const n = batch.dims[0];
    const fp32Ms = median(a) / n;
    const deployedMs = median(b) / n;
    return { fp32MsPerImage: fp32Ms, deployedMsPerImage: deployedMs, ratio: deployedMs / fp32Ms, rounds, batch: n };
  } finally {
    await fp32.release();
    await deployed.release();
  }
}

/**
 * Evaluates the deployed model on the run's evaluation images with the engine's default
 * session options (fusions on) and, with `speed`, times it against the FP32 model.
 */
export async function evaluateDeployed(
  engine: Engine,
  run: QuantizedRun,
  model: Uint8Array,
  opts: { batchSize?: number; signal?: AbortSignal; speed?: { rounds?: number; batch?: number } } = {},
): Promise<DeployedEvaluation> {
  const { crops, labels, preds, spec } = run.evaluation;
  const session = await engine.createSession(model);
  let o;
  try {
    o = await evaluate(session, crops, labels, spec, { batchSize: opts.batchSize ?? 32, signal: opts.signal });
  } finally {
    await session.release();
  }
  const result: DeployedEvaluation = {
    n: o.n,
    top1: o.top1Hits / o.n,
    top5: o.top5Hits / o.n,
    agreement: agreement(o.preds, preds),
    preds: o.preds,
  };
  if (opts.speed) {
    await checkpoint(opts.signal);
    const size = Math.min(opts.speed.batch ?? 16, crops.length);
    const first = batches(crops.slice(0, size), spec, size).next().value!;
    result.speed = await compareSpeed(
      engine,
      { fp32: serializeModel(run.graph), deployed: model },
      first.tensor,
      opts.speed.rounds,
    );
  }
  return result;
}

/** The integer kernels onnxruntime put in an optimized graph: op type → node names. */
export function fusedKernels(optimized: Graph): Map<string, string[]> {
  const kernels = new Map<string, string[]>();
  for (const n of optimized.nodes) {
    if (!n.opType.startsWith('QLinear') && n.opType !== 'QGemm' && n.opType !== 'MatMulIntegerToFloat') continue;
    // layout transforms rename a node `<name>_token_<k>`
    const name = n.name.replace(/_token_\d+$/, '');
    kernels.set(n.opType, [...(kernels.get(n.opType) ?? []), name]);
  }
  return kernels;
}

export interface FusionCheck {
  /** per kernel: layers the plan expects and layers found fused under that name */
  kernels: { kernel: IntegerKernel; expected: number; found: number }[];
  /** planned integer layers the optimized graph does not run as their kernel */
  missing: string[];
  /** integer kernels in the optimized graph the plan does not expect (e.g. a QGemm) */
  unexpected: string[];
}

/** Whether the session runs every integer kernel the plan predicts (pure). */
export function checkFusions(plan: IntegerPlan, optimized: Graph): FusionCheck {
  const fused = fusedKernels(optimized);
  const kernels: FusionCheck['kernels'] = [];
  const missing: string[] = [];
  const order: IntegerKernel[] = ['QLinearConv', 'QLinearMatMul', 'QLinearAdd', 'QLinearGlobalAveragePool'];
  const planned = new Set<string>();
  for (const kernel of order) {
    const expected = plan.layers.filter((l) => l.kernel === kernel);
    const found = new Set(fused.get(kernel) ?? []);
    for (const l of expected) {
      planned.add(`${kernel} ${l.node}`);
      if (!found.has(l.node)) missing.push(`${l.node} (${kernel})`);
    }
    kernels.push({ kernel, expected: expected.length, found: found.size });
  }
  const unexpected = [...fused].flatMap(([kernel, nodes]) =>
    nodes.filter((n) => !planned.has(`${kernel} ${n}`)).map((n) => `${n} (${kernel})`),
  );
  return { kernels, missing, unexpected };
}

/** One layer recomputed by hand against its kernel (protocol/deploy.ts LayerArithmetic). */
export type LayerArithmeticCheck = LayerArithmetic;

/**
 * Recomputes every output of one integer Conv of the deployed model by hand
 * (integer-arithmetic.ts convPixel) from the input codes the deployed session produced,
 * and counts the outputs equal to the codes its QLinearConv wrote (first evaluation image).
 * Throws QpError INTERNAL when `layer` is not an integer Conv of the plan.
 */
export async function checkLayerArithmetic(
  engine: Engine,
  run: QuantizedRun,
  model: IntegerQdqModel,
  layer: string,
): Promise<LayerArithmeticCheck> {
  const l = model.plan.layers.find((x) => x.node === layer);
  const node = run.graph.nodes.find((n) => n.name === layer);
  if (!l || l.kernel !== 'QLinearConv' || !node || !l.weight || !l.output)
    throw new QpError('INTERNAL', `"${layer}" is not a layer the deployment runs as QLinearConv.`);
  const x = l.inputs[0];
  const y = l.output;
  const w = l.weight;
  const scales = new Map([
    [x.tensor, x.scale],
    [y.tensor, y.scale],
  ]);
  const probe = deployedProbes(model);
  const outputs = new Map([...probe.outputs].filter(([t]) => scales.has(t)));
  const codes = await fetchCodes(
    engine,
    { graph: probe.graph, outputs },
    { crops: run.evaluation.crops.slice(0, 1), spec: run.evaluation.spec },
    { scales },
  );
  const input = codes.get(x.tensor)!;
  const output = codes.get(y.tensor)!;
  const [O, Cg, kH, kW] = w.dims;
  const group = typeof node.attrs.group === 'number' ? node.attrs.group : 1;
  const C = Cg * group;
  const side = Math.round(Math.sqrt(input.length / C));
  const ints = (a: unknown, fallback: number[]) => (Array.isArray(a) ? (a as number[]) : fallback);
  const conv: IntegerConv = {
    input: Array.from(input, (v) => v + x.zeroPoint),
    inputShape: [C, side, side],
    inputScale: x.scale,
    inputZeroPoint: x.zeroPoint,
    weights: w.codes,
    weightShape: [O, Cg, kH, kW],
    weightScale: w.qparams.scale,
    weightZeroPoint: w.qparams.zeroPoint[0],
    bias: l.bias?.codes,
    outputScale: y.scale,
    outputZeroPoint: y.zeroPoint,
    strides: ints(node.attrs.strides, [1, 1]) as [number, number],
    pads: ints(node.attrs.pads, [0, 0, 0, 0]) as [number, number, number, number],
    group,
  };
  const oSide = Math.round(Math.sqrt(output.length / O));
  let floatMatches = 0;
  let fixedPointMatches = 0;
  let fixedPointMaxSteps = 0;
  for (let c = 0; c < O; c++)
    for (let i = 0; i < oSide; i++)
      for (let j = 0; j < oSide; j++) {
        const p = convPixel(conv, c, i, j);
        const kernel = output[(c * oSide + i) * oSide + j] + y.zeroPoint;
        if (p.code === kernel) floatMatches++;
        if (p.fixedPointCode === kernel) fixedPointMatches++;
        fixedPointMaxSteps = Math.max(fixedPointMaxSteps, Math.abs(p.fixedPointCode - kernel));
      }
  const mid = Math.floor(oSide / 2);
  return {
    layer,
    label: displayName(layerNames(run.graph).get(layer), layer),
    outputs: output.length,
    floatMatches,
    fixedPointMatches,
    fixedPointMaxSteps,
    example: convPixel(conv, 0, mid, mid),
  };
}

/**
 * The layer a person follows by hand: the first integer convolution with groups (a
 * depthwise one: few products per output), else the first integer convolution; undefined
 * when the deployment runs none.
 */
export function arithmeticLayer(plan: IntegerPlan, graph: Graph): string | undefined {
  const convs = plan.layers.filter((l) => l.kernel === 'QLinearConv' && l.weight && l.output).map((l) => l.node);
  const grouped = convs.find((name) => {
    const g = graph.nodes.find((n) => n.name === name)?.attrs.group;
    return typeof g === 'number' && g > 1;
  });
  return grouped ?? convs[0];
}
