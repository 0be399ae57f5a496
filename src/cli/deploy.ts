/**
 * The deployment check of the bench CLI (and of `npm run bench:deploy`): from one simulated
 * run, the integer export run on onnxruntime's integer kernels, on the run's evaluation
 * images — `deployed: {top1, top5, agreement, firstDivergence}` for the record — and the
 * table of simulated versus deployed per configuration. Optionally the deploy-exact
 * simulation's top-1 and agreement with the deployment, the deployed speed against FP32 on
 * the same engine, and (onnxruntime-node) the kernels the optimized session really runs.
 * Node only (a temporary file for the optimized graph).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from '../lib/engine/types.ts';
import { evaluate } from '../lib/experiment/evaluate.ts';
import type { QuantizedRun } from '../lib/experiment/types.ts';
import { toDeployable } from '../lib/export/deployable.ts';
import { DEPLOY_EXACT_SESSION, deployExactFromDeployable } from '../lib/export/deploy-exact.ts';
import { type FusionCheck, type SpeedComparison, checkFusions, evaluateDeployed } from '../lib/export/deploy-check.ts';
import { findDivergence } from '../lib/export/divergence.ts';
import { buildIntegerQdq } from '../lib/export/integer-qdq.ts';
import { simulatedTop1 } from '../lib/export/verify.ts';
import { parseModel, serializeModel } from '../lib/onnx/model.ts';
import { agreement } from '../lib/quant/metrics.ts';

export interface FirstDivergence {
  /** ONNX node name and readable label of the layer that writes the tensor */
  layer: string;
  label: string;
  tensor: string;
  /** largest code difference there, in integer steps */
  maxSteps: number;
  /** share of that tensor's elements that differ */
  share: number;
  reasons: string[];
}

export interface DeployedRecord {
  /** fractions, on the run's evaluation images */
  top1: number;
  top5: number;
  /** share of images whose deployed top-1 equals the simulated top-1 */
  agreement: number;
  /** the first layer where the deployment differs from the simulation by more than one step (null: none on the probed images) */
  firstDivergence: FirstDivergence | null;
  /** the first layer where any code differs: where the differences start */
  firstDifference: FirstDivergence | null;
  /** images the layer comparison used */
  divergenceImages: number;
  /** ops run as integer kernels, and quantized ops that stay in float */
  integerOps: number;
  floatOps: string[];
  speed?: SpeedComparison;
  /** the deploy-exact simulation: its top-1 and its top-1 agreement with the deployment */
  exact?: { top1: number; agreement: number };
  /** the kernels onnxruntime-node's optimized session runs against the plan */
  fusions?: FusionCheck;
}

export interface DeployOptions {
  /** images for the layer-by-layer comparison (default 8) */
  divergenceImages?: number;
  /** also evaluate the deploy-exact simulation */
  exact?: boolean;
  /** also time the deployed model against FP32 (rounds of one batch) */
  speedRounds?: number;
  /** also read back the optimized graph (engine 'node' only) */
  fusionCheck?: boolean;
  signal?: AbortSignal;
}

/** The optimized graph onnxruntime-node builds for a model (written to a temporary file and read back). */
export async function optimizedGraph(engine: Engine, model: Uint8Array) {
  const dir = await mkdtemp(join(tmpdir(), 'qp-optimized-'));
  try {
    const path = join(dir, 'optimized.onnx');
    const s = await engine.createSession(model, { optimizedModelPath: path });
    await s.release();
    return parseModel(new Uint8Array(await readFile(path)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The deployment check of one run (see module header). Throws QpError EXPORT_UNSUPPORTED
 * when the run has quantizers other than 8 bits.
 */
export async function deployRecord(
  engine: Engine,
  run: QuantizedRun,
  opts: DeployOptions = {},
): Promise<DeployedRecord> {
  const d = toDeployable(run);
  const model = buildIntegerQdq(d);
  const bytes = serializeModel(model.graph);
  const dep = await evaluateDeployed(engine, run, bytes, {
    signal: opts.signal,
    speed: opts.speedRounds ? { rounds: opts.speedRounds } : undefined,
  });
  const div = await findDivergence({
    engine,
    run,
    deployed: model,
    reference: { kind: 'simulation' },
    images: opts.divergenceImages,
  });
  const summary = (f: typeof div.first): FirstDivergence | null =>
    f
      ? {
          layer: f.layer,
          label: f.label,
          tensor: f.tensor,
          maxSteps: f.maxSteps,
          share: f.differing / f.elements,
          reasons: f.reasons.map((r) => r.text),
        }
      : null;
  const record: DeployedRecord = {
    top1: dep.top1,
    top5: dep.top5,
    agreement: dep.agreement,
    firstDivergence: summary(div.first),
    firstDifference: summary(div.origin),
    divergenceImages: div.images,
    integerOps: model.plan.layers.filter((l) => l.kernel !== 'float').length,
    floatOps: model.plan.layers.filter((l) => l.kernel === 'float').map((l) => l.node),
    ...(dep.speed ? { speed: dep.speed } : {}),
  };
  if (opts.exact) {
    const exact = deployExactFromDeployable(d, model.plan);
    const s = await engine.createSession(serializeModel(exact.graph), DEPLOY_EXACT_SESSION);
    try {
      const { crops, labels, spec } = run.evaluation;
      const o = await evaluate(s, crops, labels, spec, { batchSize: 32, signal: opts.signal });
      record.exact = { top1: o.top1Hits / o.n, agreement: agreement(o.preds, dep.preds) };
    } finally {
      await s.release();
    }
  }
  if (opts.fusionCheck && engine.kind === 'node')
    record.fusions = checkFusions(model.plan, await optimizedGraph(engine, bytes));
  return record;
}

const pct = (x: number | undefined, digits = 1) => (x === undefined ? '-' : `${(100 * x).toFixed(digits)}%`);

export interface DeployRow {
  label: string;
  simulatedTop1: number;
  deployed: DeployedRecord;
}

/** One row per configuration: simulated vs deployed, the deploy-exact simulation, the first divergence. */
export function deployTable(rows: readonly DeployRow[]): string {
  const head = [
    'configuration',
    'sim top-1',
    'deployed',
    'agree sim',
    'exact top-1',
    'agree exact',
    'speed vs FP32',
    'int/float ops',
    'first divergence (default mode)',
  ];
  const body = rows.map((r) => {
    const d = r.deployed;
    const fd = d.firstDivergence;
    return [
      r.label,
      pct(r.simulatedTop1),
      pct(d.top1),
      pct(d.agreement),
      pct(d.exact?.top1),
      pct(d.exact?.agreement),
      d.speed ? `${d.speed.ratio.toFixed(2)}×` : '-',
      `${d.integerOps}/${d.floatOps.length}`,
      fd ? `${fd.label}: ${fd.maxSteps} steps on ${pct(fd.share, 2)} — ${fd.reasons[0] ?? ''}` : 'none',
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}

/** The row of one run (label from its config). */
export function deployRow(run: QuantizedRun, deployed: DeployedRecord): DeployRow {
  const c = run.config;
  return { label: `${c.backend} W${c.wBits}A${c.aBits}`, simulatedTop1: simulatedTop1(run), deployed };
}
