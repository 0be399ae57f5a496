/**
 * The deployment check of one simulated run, as every front end shows it (the CLI's
 * `--deploy` and `npm run bench:deploy`, the browser worker's "Check on integer kernels"):
 * the integer export (integer-qdq.ts) run on onnxruntime's integer kernels on the run's own
 * evaluation images (deploy-check.ts), the first layer where it departs from the simulation
 * (divergence.ts), and optionally the deploy-exact simulation, the speed against FP32 and
 * the kernels an optimized session really runs. Also the pure summary a person reads.
 *
 * Engine work only through the Engine interface; no file system (a caller that can read
 * an optimized graph passes it in as `optimizedGraph`).
 */
import type { DeployedSummary, FirstDivergence } from '../protocol/deploy.ts';
import type { Engine } from '../engine/types.ts';
import { evaluate } from '../experiment/evaluate.ts';
import type { QuantizedRun } from '../experiment/types.ts';
import type { Graph } from '../onnx/ir.ts';
import { serializeModel } from '../onnx/model.ts';
import { agreement } from '../quant/metrics.ts';
import { checkpoint } from '../util/checkpoint.ts';
import { toDeployable } from './deployable.ts';
import { DEPLOY_EXACT_SESSION, deployExactFromDeployable } from './deploy-exact.ts';
import {
  type FusionCheck,
  type SpeedComparison,
  arithmeticLayer,
  checkFusions,
  checkLayerArithmetic,
  evaluateDeployed,
} from './deploy-check.ts';
import { type Divergence, findDivergence } from './divergence.ts';
import { buildIntegerQdq } from './integer-qdq.ts';

export type { FirstDivergence } from '../protocol/deploy.ts';

/** The check of one run: what the app shows, plus the fused kernels when an optimized graph was read. */
export interface DeployedRecord extends DeployedSummary {
  speed?: SpeedComparison;
  /** the kernels an optimized session runs against the plan */
  fusions?: FusionCheck;
}

/** The part of the check that is under way, for progress reports. */
/** (`evaluate` includes the speed measurement when asked for) */
export type DeployStep = 'export' | 'evaluate' | 'divergence' | 'arithmetic' | 'exact' | 'fusions';

export interface DeployOptions {
  /** images for the layer-by-layer comparison (default 8) */
  divergenceImages?: number;
  /** also evaluate the deploy-exact simulation */
  exact?: boolean;
  /** also time the deployed model against FP32 (rounds of one batch) */
  speedRounds?: number;
  /** evaluation batch of the deployed model (default 32) */
  batchSize?: number;
  /** also recompute one integer convolution by hand against its kernel (arithmeticLayer's choice) */
  arithmetic?: boolean;
  /** the graph an engine optimized from the deployed model (onnxruntime-node can write it): checks the fusions */
  optimizedGraph?: (model: Uint8Array) => Promise<Graph>;
  /** called as each step starts */
  onStep?: (step: DeployStep) => void;
  signal?: AbortSignal;
}

/** The summary of one layer comparison (pure). */
export function divergenceSummary(f: Divergence['first']): FirstDivergence | null {
  return f
    ? {
        layer: f.layer,
        label: f.label,
        tensor: f.tensor,
        maxSteps: f.maxSteps,
        share: f.differing / f.elements,
        reasons: f.reasons.map((r) => r.text),
      }
    : null;
}

/**
 * The deployment check of one run (see module header). Throws QpError EXPORT_UNSUPPORTED
 * when the run has quantizers other than 8 bits, CANCELLED when `signal` aborts.
 */
export async function deployRecord(
  engine: Engine,
  run: QuantizedRun,
  opts: DeployOptions = {},
): Promise<DeployedRecord> {
  const step = (s: DeployStep) => opts.onStep?.(s);
  step('export');
  const d = toDeployable(run);
  const model = buildIntegerQdq(d);
  const bytes = serializeModel(model.graph);
  await checkpoint(opts.signal);
  step('evaluate');
  const dep = await evaluateDeployed(engine, run, bytes, {
    signal: opts.signal,
    batchSize: opts.batchSize,
    speed: opts.speedRounds ? { rounds: opts.speedRounds } : undefined,
  });
  await checkpoint(opts.signal);
  step('divergence');
  const div = await findDivergence({
    engine,
    run,
    deployed: model,
    reference: { kind: 'simulation' },
    images: opts.divergenceImages,
  });
  const record: DeployedRecord = {
    top1: dep.top1,
    top5: dep.top5,
    agreement: dep.agreement,
    firstDivergence: divergenceSummary(div.first),
    firstDifference: divergenceSummary(div.origin),
    divergenceImages: div.images,
    integerOps: model.plan.layers.filter((l) => l.kernel !== 'float').length,
    floatOps: model.plan.layers.filter((l) => l.kernel === 'float').map((l) => l.node),
    ...(dep.speed ? { speed: dep.speed } : {}),
  };
  const layer = opts.arithmetic ? arithmeticLayer(model.plan, run.graph) : undefined;
  if (layer) {
    await checkpoint(opts.signal);
    step('arithmetic');
    record.arithmetic = await checkLayerArithmetic(engine, run, model, layer);
  }
  if (opts.exact) {
    await checkpoint(opts.signal);
    step('exact');
    const exact = deployExactFromDeployable(d, model.plan);
    const s = await engine.createSession(serializeModel(exact.graph), DEPLOY_EXACT_SESSION);
    try {
      const { crops, labels, spec } = run.evaluation;
      const o = await evaluate(s, crops, labels, spec, { batchSize: opts.batchSize ?? 32, signal: opts.signal });
      record.exact = { top1: o.top1Hits / o.n, agreement: agreement(o.preds, dep.preds) };
    } finally {
      await s.release();
    }
  }
  if (opts.optimizedGraph) {
    await checkpoint(opts.signal);
    step('fusions');
    record.fusions = checkFusions(model.plan, await opts.optimizedGraph(bytes));
  }
  return record;
}
