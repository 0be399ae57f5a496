/**
 * The deployed evaluation: the integer export (integer-qdq.ts) run the way a deployment
 * runs it — an onnxruntime session with its default optimizations, which fuse the QDQ
 * groups into integer kernels — on the simulated run's own evaluation images. Gives the
 * deployed top-1/top-5, its top-1 agreement with the simulation, the deployed model's speed
 * against the FP32 model on the same engine, and (from a graph onnxruntime wrote after
 * optimizing) which integer kernels the session really runs against what the plan says.
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
import type { IntegerKernel, IntegerPlan } from './integer-plan.ts';

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

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

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
    if (!n.opType.startsWith('QLinear')) continue;
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
}

/** Whether the session runs every integer kernel the plan predicts (pure). */
export function checkFusions(plan: IntegerPlan, optimized: Graph): FusionCheck {
  const fused = fusedKernels(optimized);
  const kernels: FusionCheck['kernels'] = [];
  const missing: string[] = [];
  const order: IntegerKernel[] = ['QLinearConv', 'QLinearMatMul', 'QLinearAdd', 'QLinearGlobalAveragePool'];
  for (const kernel of order) {
    const expected = plan.layers.filter((l) => l.kernel === kernel);
    const found = new Set(fused.get(kernel) ?? []);
    for (const l of expected) if (!found.has(l.node)) missing.push(`${l.node} (${kernel})`);
    kernels.push({ kernel, expected: expected.length, found: found.size });
  }
  return { kernels, missing };
}
