/**
 * Runs the experiments of a set of lessons on one model and data set and checks every
 * claim. Uses the pipeline of `npm run bench` (prepareGroup / runConfig): runs are
 * deduplicated across lessons, grouped by data split so FP32 evaluation and calibration
 * are shared, weights quantized once per weight scheme, and only the runs a claim
 * analyses pay for the per-layer analysis.
 */
import { canonicalJson } from '../lib/config/hash.ts';
import { weightKey, type WeightQuant } from '../lib/experiment/quantize.ts';
import { configWeights, DEFAULT_TUNING, prepareGroup, resolveModelInput, runConfig } from '../lib/pipeline/run.ts';
import type { ExperimentResult, ProgressFn, RunInputs } from '../lib/experiment/types.ts';
import { parseModel } from '../lib/onnx/model.ts';
import { exportRun } from '../lib/export/bundle.ts';
import { verifyExport } from '../lib/export/verify.ts';
import type { QuantizedRun } from '../lib/experiment/types.ts';
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

type Result = Omit<ExperimentResult, 'configHash' | 'seconds' | 'createdAt'> &
  Pick<ClaimResult, 'deployed' | 'integer'>;

export async function runLessonClaims(
  lessons: readonly Lesson[],
  rawInputs: RunInputs,
  opts: ClaimRunOptions = {},
): Promise<LessonOutcome[]> {
  const { runs, keys } = planRuns(lessons, opts.evalLimit);
  const base = parseModel(rawInputs.modelBytes);
  const { inputs, tuning } = resolveModelInput(base, rawInputs, DEFAULT_TUNING);
  const groups = new Map<string, PlannedRun[]>();
  for (const r of runs) {
    const c = r.config;
    const k = canonicalJson([c.foldBn, c.calib, c.eval, c.seed]);
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const results = new Map<string, Result>();
  for (const group of groups.values()) {
    const prepared = await prepareGroup(
      base,
      group.map((r) => ({ ...r.config, model: inputs.model.id })),
      inputs,
      { tuning, onProgress: opts.onProgress },
    );
    const weights = new Map<string, WeightQuant[]>();
    for (const r of group) {
      const t0 = performance.now();
      const cfg = { ...r.config, model: inputs.model.id };
      const wk = weightKey(cfg);
      // round-to-nearest, or AdaRound/GPTQ for configs that ask for them
      if (!weights.has(wk))
        weights.set(
          wk,
          (await configWeights(inputs.engine, prepared, cfg, inputs, { tuning, onProgress: opts.onProgress })).weights,
        );
      let deployed: ClaimResult['deployed'];
      let integer: ClaimResult['integer'];
      const onQuantized = async (q: QuantizedRun) => {
        if (r.deployInteger) integer = await integerClaim(inputs.engine, q);
        if (!r.deploy) return;
        const model = exportRun(q, r.key).files['model.qdq.onnx'];
        if (!model)
          throw new Error(
            `Lesson run ${label(r)} asks for a deployed model, but its settings cannot be exported as QDQ ONNX.`,
          );
        const c = await verifyExport(inputs.engine, q, model, { fusions: false });
        deployed = { top1: c.deployedTop1, agreement: c.agreement };
      };
      const res = await runConfig(inputs.engine, prepared, cfg, inputs, weights.get(wk)!, {
        tuning,
        onProgress: opts.onProgress,
        analyze: r.analyze ? { images: opts.analysisImages ?? 32 } : undefined,
        onQuantized: r.deploy || r.deployInteger ? onQuantized : undefined,
      });
      results.set(r.key, { ...res, deployed, integer });
      opts.log?.(
        `${label(r)}: top-1 ${(100 * res.quant.top1).toFixed(1)}% (FP32 ${(100 * res.fp32.top1).toFixed(1)}%), ${((performance.now() - t0) / 1000).toFixed(0)} s`,
      );
    }
  }
  return lessons.map((l) => {
    const names = keys.get(l.id)!;
    const outcome = evaluateClaim(l, (name) => results.get(names.get(name)!) as ClaimResult);
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
