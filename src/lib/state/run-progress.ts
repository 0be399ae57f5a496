/**
 * One progress bar for a whole run. The worker reports each stage's own progress (decode
 * 8/96, FP32 evaluation 16/48, AdaRound layer 3/51, …); this module turns that stream into
 * the fraction of the whole run done, the stage's name, one counter, and an estimate of the
 * time left. Pure: the caller passes the clock, so a recorded trace replays exactly
 * (tests/unit/run-progress.test.ts). Weights and their measurement: docs/ui.md.
 *
 * How it works. A run is a fixed sequence of phases (start, decode, FP32 evaluation,
 * calibration, weights, fixes, quantized evaluation, evaluation before fixes, analysis);
 * the config says which occur and how much work each is, in "image units": one FP32
 * forward pass of one image (PHASE_COST). The fraction done is the work done over the
 * planned work; it never goes back. The time left is the work left times the measured
 * seconds per unit — taken from the FP32 evaluation once it has run a few batches (the
 * cleanest measure of this engine on this machine), before that from all the time so far —
 * except for the phase under way, which, once a tenth of it is done, extrapolates its own
 * pace. So a wrong prior for one phase costs accuracy only until that phase has started.
 * Must not: touch the DOM or the clock itself.
 */
import type { ExperimentConfig } from '../config/types.ts';
import type { Progress } from '../protocol/results.ts';

export type Phase = 'start' | 'decode' | 'fp32' | 'calibrate' | 'weights' | 'fixes' | 'evaluate' | 'before' | 'analyze';

const ORDER: readonly Phase[] = [
  'start',
  'decode',
  'fp32',
  'calibrate',
  'weights',
  'fixes',
  'evaluate',
  'before',
  'analyze',
];

/**
 * Work per phase in FP32 image forwards (fit on recorded MobileNet-V2 runs on wasm; the
 * numbers and how they were measured are in docs/ui.md). Per image of the split the
 * phase reads, plus a fixed part.
 */
export const PHASE_COST = {
  /** engine start and session creation */
  start: 8,
  /** decode + crop, per image (calibration + evaluation); near 0 when the crops are cached */
  decodePerImage: 0.35,
  fp32PerImage: 1,
  /** one pass over the calibration images collecting the observers' statistics */
  calibratePerPass: 1.6,
  /** round-to-nearest weights */
  weights: 3,
  /** bias correction / BN re-estimation, per calibration image */
  fixesPerImage: 3,
  evaluatePerImage: 1.3,
  /** the analysis: per-layer error per analysis image, plus weight-only and activation-only evaluations */
  analyzePerImage: 6,
  /** AdaRound, per calibration image and 100 iterations */
  adaroundPer100Iters: 2.5,
  /** GPTQ, per calibration image */
  gptqPerImage: 6,
  /** GPTQ's solves, independent of the images */
  gptqFixed: 40,
} as const;

export interface RunPlanInput {
  config: Pick<
    ExperimentConfig,
    'calib' | 'eval' | 'ptq' | 'ptqIters' | 'biasCorrection' | 'bnReestimate' | 'cle' | 'aObserver'
  >;
  /** analysis images when the analysis runs */
  analyzeImages?: number;
  /** images the data set holds (a split never asks for more) */
  available?: number;
}

/** The planned work of each phase, in image units (0: the phase does not occur). */
export function planRun(p: RunPlanInput): Record<Phase, number> {
  const c = p.config;
  const cap = (n: number) => (p.available !== undefined ? Math.min(n, p.available) : n);
  const calib = cap(c.calib);
  const ev = cap(c.eval);
  const histogram = c.aObserver === 'mse' || c.aObserver === 'percentile';
  const fixes = c.biasCorrection || c.bnReestimate;
  const ptq =
    c.ptq === 'adaround'
      ? PHASE_COST.adaroundPer100Iters * calib * (c.ptqIters / 100)
      : c.ptq === 'gptq'
        ? PHASE_COST.gptqPerImage * calib + PHASE_COST.gptqFixed
        : 0;
  return {
    start: PHASE_COST.start,
    decode: PHASE_COST.decodePerImage * (calib + ev),
    fp32: PHASE_COST.fp32PerImage * ev,
    calibrate: PHASE_COST.calibratePerPass * calib * (histogram ? 2 : 1) + (c.cle ? calib : 0),
    weights: PHASE_COST.weights + ptq,
    fixes: fixes ? PHASE_COST.fixesPerImage * calib : 0,
    evaluate: PHASE_COST.evaluatePerImage * ev,
    before: fixes ? PHASE_COST.evaluatePerImage * ev : 0,
    analyze: p.analyzeImages ? PHASE_COST.analyzePerImage * p.analyzeImages + 2 * PHASE_COST.evaluatePerImage * ev : 0,
  };
}

/** Which phase a worker report belongs to (the pipeline's stage names and message prefixes). */
export function phaseOf(p: Progress): Phase {
  switch (p.stage) {
    case 'load':
      return 'start';
    case 'decode':
      return 'decode';
    case 'fp32':
      return 'fp32';
    case 'calibrate':
      return 'calibrate';
    case 'quantize':
      return p.message.startsWith('Fixes') ? 'fixes' : 'weights';
    case 'evaluate':
      return p.message.startsWith('Evaluation before fixes') ? 'before' : 'evaluate';
    case 'analyze':
      return 'analyze';
  }
  return 'weights';
}

export const PHASE_NAMES: Readonly<Record<Phase, string>> = {
  start: 'Starting',
  decode: 'Decoding images',
  fp32: 'FP32 evaluation',
  calibrate: 'Calibrating',
  weights: 'Quantizing weights',
  fixes: 'Applying fixes',
  evaluate: 'Quantized evaluation',
  before: 'Evaluation before fixes',
  analyze: 'Analysing',
};

export interface RunProgressView {
  /** of the whole run, 0…1, never decreasing */
  fraction: number;
  phase: Phase;
  /** the phase's name for a person ("Calibrating", "Optimizing rounding (AdaRound)") */
  stage: string;
  /** one counter: "8 / 16 images", "layer 3 / 51"; empty when the phase reports fractions */
  counter: string;
  /** what the report adds (a layer's name, a fix's step) */
  detail: string;
  /** seconds left, once there is a basis for it */
  etaSeconds?: number;
  /** seconds since the run started */
  elapsed: number;
}

const UNIT: Partial<Record<Phase, string>> = {
  decode: 'images',
  fp32: 'images',
  evaluate: 'images',
  before: 'images',
};

/** A report's fraction of its own phase, 0…1. */
function phaseFraction(p: Progress): number {
  return p.total > 0 ? Math.min(1, Math.max(0, p.done / p.total)) : 0;
}

/**
 * Follows one run. `update` takes each report with the time it arrived (seconds, any
 * origin; the first call's time is the start) and returns what to show.
 */
export class RunProgress {
  private readonly plan: Record<Phase, number>;
  private readonly total: number;
  private t0: number | undefined;
  private phase: Phase = 'start';
  private phaseStart = 0;
  private phaseFrac = 0;
  /** work done in phases that are over */
  private doneBefore = 0;
  private best = 0;
  /** seconds per unit measured on the FP32 evaluation */
  private fp32Rate: number | undefined;
  private readonly ptqLabel: string | undefined;

  constructor(input: RunPlanInput) {
    this.plan = planRun(input);
    this.total = ORDER.reduce((s, k) => s + this.plan[k], 0);
    const m = input.config.ptq;
    this.ptqLabel = m === 'adaround' ? 'AdaRound' : m === 'gptq' ? 'GPTQ' : undefined;
  }

  update(p: Progress, now: number): RunProgressView {
    if (this.t0 === undefined) {
      this.t0 = now;
      this.phaseStart = now;
    }
    const phase = phaseOf(p);
    const at = ORDER.indexOf(phase);
    const cur = ORDER.indexOf(this.phase);
    if (at > cur) {
      // every phase up to this one is over (some report nothing, e.g. a cached decode)
      this.doneBefore = ORDER.slice(0, at).reduce((s, k) => s + this.plan[k], 0);
      this.phase = phase;
      this.phaseStart = now;
      this.phaseFrac = 0;
    }
    if (at === ORDER.indexOf(this.phase)) this.phaseFrac = Math.max(this.phaseFrac, phaseFraction(p));
    const curWork = this.plan[this.phase];
    const doneWork = this.doneBefore + curWork * this.phaseFrac;
    const fraction = this.total > 0 ? Math.min(1, doneWork / this.total) : 0;
    this.best = Math.max(this.best, fraction);

    const elapsed = now - this.t0;
    const inPhase = now - this.phaseStart;
    if (this.phase === 'fp32' && this.phaseFrac >= 0.1 && inPhase > 0.5) {
      this.fp32Rate = inPhase / (curWork * this.phaseFrac);
    }
    const rate = this.fp32Rate ?? (doneWork > 0 && elapsed > 0 ? elapsed / doneWork : undefined);
    let eta: number | undefined;
    if (rate !== undefined && elapsed > 0) {
      const after = ORDER.slice(ORDER.indexOf(this.phase) + 1).reduce((s, k) => s + this.plan[k], 0);
      const ownPace = this.phaseFrac >= 0.1 && inPhase > 0.5;
      const curLeft = ownPace
        ? (inPhase * (1 - this.phaseFrac)) / this.phaseFrac
        : Math.max(0, curWork * (1 - this.phaseFrac) * rate - (this.phaseFrac > 0 ? 0 : inPhase));
      eta = Math.max(0, curLeft + after * rate);
    }

    return {
      fraction: this.best,
      phase: this.phase,
      stage: this.stageName(),
      counter: this.counter(p),
      detail: this.detail(p),
      etaSeconds: eta,
      elapsed,
    };
  }

  private stageName(): string {
    if (this.phase === 'weights' && this.ptqLabel) return `Optimizing rounding (${this.ptqLabel})`;
    return PHASE_NAMES[this.phase];
  }

  private counter(p: Progress): string {
    if (phaseOf(p) !== this.phase) return '';
    if (p.count)
      return `${p.count.of === 'layers' ? 'layer ' : ''}${p.count.done} / ${p.count.total}${p.count.of === 'layers' ? '' : ` ${p.count.of}`}`;
    const whole = Number.isInteger(p.done) && Number.isInteger(p.total) && p.total > 1;
    if (!whole) return '';
    const unit = UNIT[this.phase];
    return `${p.done} / ${p.total}${unit ? ` ${unit}` : ''}`;
  }

  private detail(p: Progress): string {
    let d = p.message.trim();
    // drop what the stage name and the counter already say
    d = d.replace(/\s*\(?\d+\s*\/\s*\d+\)?/g, '').replace(/\s*\(\d+%\)/, '');
    for (const prefix of [PHASE_NAMES[this.phase], 'Fixes:', this.ptqLabel ?? '']) {
      if (prefix && d.toLowerCase().startsWith(prefix.toLowerCase())) d = d.slice(prefix.length);
    }
    d = d.replace(/^[\s·:,.-]+/, '').replace(/[\s·:,]+$/, '');
    return d ? d[0].toUpperCase() + d.slice(1) : '';
  }
}
