/**
 * Runs the experiments of a set of lessons on one model and data set and checks every
 * claim. Runs go through the one pipeline loop, as `npm run bench` does: they are
 * deduplicated across lessons, and one call of the loop shares the FP32 evaluation and the
 * calibration statistics between runs of one data split and weights between runs of one
 * weight scheme; only the runs a claim analyses pay for the per-layer analysis.
 */
import type { ExperimentConfig } from '../lib/config/types.ts';
import { runPipeline } from '../lib/pipeline/run.ts';
import type { ExperimentResult, ProgressFn, QuantizedRun, RunInputs } from '../lib/experiment/types.ts';
import { exportRun } from '../lib/export/bundle.ts';
import { verifyExport } from '../lib/export/verify.ts';
import { evaluateClaim, planRuns, type ClaimResult, type PlannedRun } from './claims.ts';
import { integerClaim } from './deploy-claims.ts';
import type { Lesson } from './types.ts';

export interface LessonOutcome {
  id: string;
  title: string;
  claim: string;
  holds: boolean;
  measured: Record<string, number>;
  details: string[];
}

export interface ClaimRunOptions {
  /** evaluate on at most this many images (cheap CI runs; claims are stated for 872) */
  evalLimit?: number;
  /** images the per-layer analysis uses (default 32) */
  analysisImages?: number;
  onProgress?: ProgressFn;
  /** one line per finished run */
  log?: (line: string) => void;
}

type Deployed = ClaimResult['deployed'];
type Integer = ClaimResult['integer'];

export async function runLessonClaims(
  lessons: readonly Lesson[],
  inputs: RunInputs,
  opts: ClaimRunOptions = {},
): Promise<LessonOutcome[]> {
  const { runs, keys } = planRuns(lessons, opts.evalLimit);
  const byConfig = new Map<ExperimentConfig, PlannedRun>();
  const configs = runs.map((r) => {
    const cfg = { ...r.config, model: inputs.model.id };
    byConfig.set(cfg, r);
    return cfg;
  });
  const deployed = new Map<string, Deployed>();
  const integer = new Map<string, Integer>();
  const onQuantized = async (q: QuantizedRun) => {
    const r = byConfig.get(q.config)!;
    if (r.deployInteger) integer.set(r.key, await integerClaim(inputs.engine, q));
    if (!r.deploy) return;
    const bundle = exportRun(q, r.key);
    const model = bundle.files['model.qdq.onnx'];
    if (!model)
      throw new Error(
        `Lesson run ${label(r)} asks for a deployed model, but its settings cannot be exported as QDQ ONNX.`,
      );
    const c = await verifyExport(inputs.engine, q, model, { fusions: false, optimization: bundle.qdqOptimization });
    deployed.set(r.key, { top1: c.deployedTop1, agreement: c.agreement });
  };
  let t0 = performance.now();
  const results = new Map<string, ClaimResult>();
  await runPipeline(configs, inputs, {
    onProgress: opts.onProgress,
    onQuantized,
    hooks: { analyzeFor: (cfg) => (byConfig.get(cfg)!.analyze ? { images: opts.analysisImages ?? 32 } : undefined) },
    onResult: (res: ExperimentResult) => {
      const r = byConfig.get(res.config)!;
      results.set(r.key, { ...res, deployed: deployed.get(r.key), integer: integer.get(r.key) });
      opts.log?.(
        `${label(r)}: top-1 ${(100 * res.quant.top1).toFixed(1)}% (FP32 ${(100 * res.fp32.top1).toFixed(1)}%), ${((performance.now() - t0) / 1000).toFixed(0)} s`,
      );
      t0 = performance.now();
    },
  });
  return lessons.map((l) => {
    const names = keys.get(l.id)!;
    const outcome = evaluateClaim(l, (name) => results.get(names.get(name)!)!);
    return { id: l.id, title: l.title, claim: l.claim.text, ...outcome };
  });
}

function label(r: PlannedRun): string {
  const c = r.config;
  const extras = [
    c.wGranularity === 'per-tensor' ? 'per-tensor' : '',
    `w:${c.wObserver} a:${c.aObserver} a-sign:${c.aSign}`,
    c.calib !== 128 ? `calib ${c.calib}` : '',
    c.ptq !== 'none' ? `+${c.ptq}${c.ptqInputs === 'fp32' ? ' (fp32 inputs)' : ''}` : '',
    c.biasCorrection ? '+bias correction' : '',
    c.firstLast8bit ? 'first/last 8-bit' : '',
    r.analyze ? '+analysis' : '',
    r.deploy ? '+export' : '',
    r.deployInteger ? '+integer kernels' : '',
  ].filter(Boolean);
  return `${c.backend} W${c.wBits}A${c.aBits} ${extras.join(' ')}`;
}

/** The table `npm run lessons` prints: id, holds, claim, measured. */
export function lessonsTable(outcomes: readonly LessonOutcome[]): string {
  const rows = outcomes.map((o) => [
    o.id,
    o.holds ? 'holds' : 'FAILS',
    Object.entries(o.measured)
      .map(([k, v]) => `${k}=${v}`)
      .join(' '),
  ]);
  const w0 = Math.max(2, ...rows.map((r) => r[0].length));
  const lines = [`${'id'.padEnd(w0)}  claim  measured`];
  for (const [i, r] of rows.entries()) {
    lines.push(`${r[0].padEnd(w0)}  ${r[1].padEnd(5)}  ${r[2]}`);
    lines.push(`${''.padEnd(w0)}         ${outcomes[i].claim}`);
  }
  return lines.join('\n');
}
