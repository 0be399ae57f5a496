/**
 * Checking lesson claims, without running anything: which experiments a set of lessons
 * needs (deduplicated, so lessons share runs), the numbers a check reads from a result,
 * and whether each check holds. Pure; the runner (run-claims.ts) supplies the results.
 */
import type { ExperimentConfig } from '../lib/config/types.ts';
import { resolveConfig } from '../lib/config/resolve.ts';
import { canonicalJson } from '../lib/config/hash.ts';
import type { ExperimentResult } from '../lib/experiment/types.ts';
import type { LayerAnalysis } from '../lib/analysis/types.ts';
import type { Check, ClaimRun, Lesson, Metric, Quantity } from './types.ts';

export interface PlannedRun {
  key: string;
  config: ExperimentConfig;
  analyze: boolean;
  deploy: boolean;
  deployInteger: boolean;
}

/** What a `deployInteger` run measures (fractions; see deploy-claims.ts). */
export interface IntegerClaim {
  top1: number;
  agreement: number;
  exactAgreement: number;
  pixelMatch: number;
  fixedPointMatch: number;
}

/** A run's result with, for `deploy` runs, the exported model's check (fractions). */
export type ClaimResult = ExperimentResult & {
  deployed?: { top1: number; agreement: number };
  integer?: IntegerClaim;
};

/** Resolved config of a claim run, with an optional evaluation-image limit (cheap CI runs). */
export function runConfig(run: ClaimRun, evalLimit?: number): ExperimentConfig {
  const cfg = resolveConfig(run.config as Partial<ExperimentConfig>);
  return evalLimit ? { ...cfg, eval: Math.min(cfg.eval, evalLimit) } : cfg;
}

function runKey(cfg: ExperimentConfig): string {
  return canonicalJson(cfg);
}

/**
 * Every distinct experiment the lessons need, once. A config asked for with and without
 * analysis is run once, analysed. Returns the plan and, per lesson, run name → plan key.
 */
export function planRuns(
  lessons: readonly Lesson[],
  evalLimit?: number,
): { runs: PlannedRun[]; keys: Map<string, Map<string, string>> } {
  const byKey = new Map<string, PlannedRun>();
  const keys = new Map<string, Map<string, string>>();
  for (const l of lessons) {
    const names = new Map<string, string>();
    for (const [name, run] of Object.entries(l.claim.runs)) {
      const config = runConfig(run, evalLimit);
      const key = runKey(config);
      const p = byKey.get(key);
      if (p) {
        p.analyze ||= !!run.analyze;
        p.deploy ||= !!run.deploy;
        p.deployInteger ||= !!run.deployInteger;
      } else
        byKey.set(key, {
          key,
          config,
          analyze: !!run.analyze,
          deploy: !!run.deploy,
          deployInteger: !!run.deployInteger,
        });
      names.set(name, key);
    }
    keys.set(l.id, names);
  }
  return { runs: [...byKey.values()], keys };
}

const pct = (x: number) => 100 * x;

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Mean drift of the last third of layers over the first third (depth trend, robust to single layers). */
export function driftLateOverEarly(layers: readonly LayerAnalysis[]): number {
  const ordered = [...layers]
    .sort((a, b) => a.index - b.index)
    .map((l) => l.drift.meanAbsShift)
    .filter(Number.isFinite);
  const third = Math.floor(ordered.length / 3);
  if (third < 1) return Number.NaN;
  return mean(ordered.slice(-third)) / mean(ordered.slice(0, third));
}

/**
 * One number of one result. Throws a full-sentence Error when the result lacks what the
 * metric needs (e.g. analysis not run, no fixes applied): that is a broken lesson, not a
 * failed claim.
 */
export function metricValue(r: ClaimResult, metric: Metric): number {
  const need = <T>(x: T | undefined, what: string): T => {
    if (x === undefined)
      throw new Error(`The metric "${metric}" needs ${what}, which this run does not have; fix the lesson's run.`);
    return x;
  };
  switch (metric) {
    case 'top1':
      return pct(r.quant.top1);
    case 'top5':
      return pct(r.quant.top5);
    case 'fp32':
      return pct(r.fp32.top1);
    case 'drop':
      return pct(r.fp32.top1 - r.quant.top1);
    case 'agreement':
      return pct(r.agreement);
    case 'beforeFixes':
      return pct(need(r.beforeFixes, 'a fix (biasCorrection or bnReestimate)').top1);
    case 'fixGain':
      return pct(r.quant.top1 - need(r.beforeFixes, 'a fix (biasCorrection or bnReestimate)').top1);
    case 'weightOnly':
      return pct(need(r.analysis, 'analyze: true').weightOnly.top1);
    case 'activationOnly':
      return pct(need(r.analysis, 'analyze: true').activationOnly.top1);
    case 'vanishedFirstDepthwise': {
      const dw = need(r.layers, 'analyze: true')
        .filter((l) => l.depthwise)
        .sort((a, b) => a.index - b.index)[0];
      return need(dw, 'a depthwise convolution in the model').vanishedChannels;
    }
    case 'driftLateOverEarly':
      return driftLateOverEarly(need(r.layers, 'analyze: true'));
    case 'deployedTop1':
      return pct(need(r.deployed, 'deploy: true').top1);
    case 'deployedAgreement':
      return pct(need(r.deployed, 'deploy: true').agreement);
    case 'integerTop1':
      return pct(need(r.integer, 'deployInteger: true').top1);
    case 'integerAgreement':
      return pct(need(r.integer, 'deployInteger: true').agreement);
    case 'exactAgreement':
      return pct(need(r.integer, 'deployInteger: true').exactAgreement);
    case 'pixelMatch':
      return pct(need(r.integer, 'deployInteger: true').pixelMatch);
    case 'fixedPointMatch':
      return pct(need(r.integer, 'deployInteger: true').fixedPointMatch);
  }
}

export interface ClaimOutcome {
  holds: boolean;
  /** every quantity the checks read, as `run.metric` → value (rounded to 0.1 / 0.01) */
  measured: Record<string, number>;
  /** one line per check, e.g. "w4.top1 = 13.1 < 25" */
  details: string[];
}

function round(x: number): number {
  return Math.abs(x) >= 10 ? Math.round(x * 10) / 10 : Math.round(x * 100) / 100;
}

/** Evaluates a lesson's checks over results looked up by run name. */
export function evaluateClaim(lesson: Lesson, resultOf: (run: string) => ClaimResult): ClaimOutcome {
  const measured: Record<string, number> = {};
  const read = (q: Quantity): number => {
    if (!(q.run in lesson.claim.runs))
      throw new Error(`Lesson "${lesson.id}" checks run "${q.run}", which its claim does not define.`);
    const v = metricValue(resultOf(q.run), q.metric);
    measured[`${q.run}.${q.metric}`] = round(v);
    return v;
  };
  const details: string[] = [];
  let holds = true;
  for (const c of lesson.claim.checks) {
    const l = read(c.left);
    const base = typeof c.right === 'number' ? c.right : read(c.right);
    const r = base + (c.margin ?? 0);
    const ok = compare(l, c.op, r);
    holds &&= ok;
    details.push(`${describeCheck(c)}: ${round(l)} ${c.op} ${round(r)} ${ok ? 'holds' : 'FAILS'}`);
  }
  return { holds, measured, details };
}

export function compare(l: number, op: Check['op'], r: number): boolean {
  if (!Number.isFinite(l) || !Number.isFinite(r)) return false;
  switch (op) {
    case '<':
      return l < r;
    case '<=':
      return l <= r;
    case '>':
      return l > r;
    case '>=':
      return l >= r;
  }
}

export function describeCheck(c: Check): string {
  const q = (x: Quantity | number) => (typeof x === 'number' ? String(x) : `${x.run}.${x.metric}`);
  return `${q(c.left)} ${c.op} ${q(c.right)}${c.margin ? ` ${c.margin > 0 ? '+' : '−'} ${Math.abs(c.margin)}` : ''}`;
}
