/**
 * One progress bar for a whole run. The worker reports each stage's own progress (decode
 * 8/96, FP32 evaluation 16/48, AdaRound layer 3/51, …); this module turns that stream into
 * the fraction of the whole run done, the stage's name, one counter, and an estimate of the
 * time left. Pure: the caller passes the clock, so a recorded trace replays exactly
 * (tests/unit/run-progress.test.ts). Weights and their measurement: docs/ui.md.
 *
 * How it works. A run is a fixed sequence of phases (start, decode, FP32 evaluation,
 * calibration, weights, fixes, quantized evaluation, evaluation before fixes, analysis,
 * saving the result);
 * the config says which occur and how much work each is, in "image units": one FP32
 * forward pass of one image (PHASE_COST). The fraction done is the work done over the
 * planned work; it never goes back. The time left is the work left times the measured
 * seconds per unit — taken from the FP32 evaluation once it has run a few batches (the
 * cleanest measure of this engine on this machine), before that from all the time since the
 * engine started (and none while images are decoded: their pace is not the model's) —
 * except for the phase under way, which, once a tenth of it is done, extrapolates its own
 * pace. So a wrong prior for one phase costs accuracy only until that phase has started.
 * Must not: touch the DOM or the clock itself.
 */
import { PTQ_LABEL, usesEngineGradients } from '../config/names.ts';
import type { ExperimentConfig } from '../config/types.ts';
import type { Progress } from '../protocol/results.ts';

export type Phase =
  'start' | 'decode' | 'fp32' | 'calibrate' | 'weights' | 'fixes' | 'evaluate' | 'before' | 'analyze' | 'finish';

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
  'finish',
];

/**
 * Work per phase in FP32 image forwards (fit on recorded MobileNet-V2 runs on wasm; the
 * numbers and how they were measured are in docs/ui.md). Per image of the split the
 * phase reads, plus a fixed part.
 */
export const PHASE_COST = Object.freeze({
  /** engine start (its time is left out of the measured pace) */
  start: 1,
  /** decode + crop, per image (calibration + evaluation); nothing when the crops are cached */
  decodePerImage: 0.1,
  /** the FP32 model's session and its first batch's warm-up */
  fp32Fixed: 13,
  fp32PerImage: 1,
  /** the statistics graph's session, and one pass per calibration image */
  calibrateFixed: 6,
  calibratePerPass: 1,
  /** round-to-nearest weights (and building what the next steps share) */
  weights: 5,
  /** bias correction / BN re-estimation: their sessions, and per calibration image */
  fixesFixed: 20,
  fixesPerImage: 6,
  /** a fake-quant graph and its session, then per evaluation image */
  evaluateFixed: 2,
  evaluatePerImage: 1.1,
  /** the analysis' per-layer error, per analysis image */
  analyzePerImage: 11,
  /** the analysis' two evaluations (weights only, activations only), per evaluation image each */
  analyzeEvalPerImage: 1.1,
  /**
   * AdaRound and GPTQ: their solves (GPTQ's, and AdaRound's at 50 iterations), AdaRound's
   * iterations beyond that, and reading each layer's inputs per calibration image
   */
  ptqFixed: 800,
  adaroundPer100Iters: 400,
  adaroundFixed: 600,
  ptqPerImage: 6,
  /**
   * BRECQ, QDrop and AdaRound with learned step sizes (engine gradients): each unit's
   * training graphs and its passes before and after, and every unit's steps per 100
   * (docs/reconstruction-low-bit.md, "Time")
   */
  blockReconFixed: 100,
  blockReconPer100Iters: 2400,
  /**
   * after the last evaluation, before the worker's "saving" report: the deployable model's
   * export (built as soon as the quantized evaluation ends) and the sessions' release
   */
  finishFixed: 13,
  /** from that report until the page shows the result: storing it, its transfer, its first render */
  finish: 2,
});

export type PhaseCosts = typeof PHASE_COST;

export interface RunPlanInput {
  config: Pick<
    ExperimentConfig,
    'calib' | 'eval' | 'ptq' | 'ptqIters' | 'ptqActRanges' | 'biasCorrection' | 'bnReestimate' | 'cle' | 'aObserver'
  >;
  /** analysis images when the analysis runs */
  analyzeImages?: number;
  /** images the data set holds (a split never asks for more) */
  available?: number;
  /** the run ends by saving its results (the browser's worker; not a run in Node) */
  saves?: boolean;
}

/**
 * A phase's planned work: a fixed part done before its first report of progress (a
 * session to create), then parts that its reports count through in order (done 0…1 is the
 * first part, 1…2 the second: the analysis reports its per-layer error, then two
 * evaluations; most phases have one part).
 */
export interface PhasePlan {
  fixed: number;
  parts: number[];
}

const work = (p: PhasePlan) => p.fixed + p.parts.reduce((s, x) => s + x, 0);

/** The planned work of each phase, in image units (0: the phase does not occur). */
export function planRun(p: RunPlanInput, costs: PhaseCosts = PHASE_COST): Record<Phase, number> {
  const plans = planPhases(p, costs);
  return Object.fromEntries(ORDER.map((k) => [k, work(plans[k])])) as Record<Phase, number>;
}

export function planPhases(p: RunPlanInput, costs: PhaseCosts = PHASE_COST): Record<Phase, PhasePlan> {
  const C = costs;
  const c = p.config;
  const cap = (n: number) => (p.available !== undefined ? Math.min(n, p.available) : n);
  const calib = cap(c.calib);
  const ev = cap(c.eval);
  const histogram = c.aObserver === 'mse' || c.aObserver === 'percentile';
  const fixes = c.biasCorrection || c.bnReestimate;
  const ptq = usesEngineGradients(c)
    ? C.blockReconFixed + C.blockReconPer100Iters * (c.ptqIters / 100) + C.ptqPerImage * calib
    : c.ptq === 'adaround'
      ? C.adaroundFixed + C.adaroundPer100Iters * (c.ptqIters / 100) + C.ptqPerImage * calib
      : c.ptq === 'gptq'
        ? C.ptqFixed + C.ptqPerImage * calib
        : 0;
  const none = { fixed: 0, parts: [0] };
  const evaluation = { fixed: C.evaluateFixed, parts: [C.evaluatePerImage * ev] };
  return {
    start: { fixed: C.start, parts: [0] },
    decode: { fixed: 0, parts: [C.decodePerImage * (calib + ev)] },
    fp32: { fixed: C.fp32Fixed, parts: [C.fp32PerImage * ev] },
    calibrate: {
      fixed: C.calibrateFixed,
      parts: [C.calibratePerPass * calib * (histogram ? 2 : 1) + (c.cle ? C.fp32PerImage * calib : 0)],
    },
    weights: { fixed: C.weights, parts: [ptq] },
    fixes: fixes ? { fixed: C.fixesFixed, parts: [C.fixesPerImage * calib] } : none,
    evaluate: evaluation,
    before: fixes ? evaluation : none,
    finish: p.saves ? { fixed: C.finishFixed, parts: [C.finish] } : none,
    analyze: p.analyzeImages
      ? {
          fixed: 0,
          parts: [C.analyzePerImage * p.analyzeImages, C.analyzeEvalPerImage * ev, C.analyzeEvalPerImage * ev],
        }
      : none,
  };
}

/** Where a report says a phase is: the part under way and the share of it done. */
export interface PhasePosition {
  /** of the phase's whole work, 0…1 */
  share: number;
  part: number;
  /** of that part, 0…1 */
  partShare: number;
}

export function phasePosition(plan: PhasePlan, p: Progress): PhasePosition {
  const total = work(plan);
  if (total <= 0 || p.total <= 0 || p.done <= 0) return { share: 0, part: 0, partShare: 0 };
  const done = Math.min(p.total, p.done);
  const parts = plan.parts.length === p.total ? plan.parts : [plan.parts.reduce((s, x) => s + x, 0)];
  const scale = parts.length === p.total ? 1 : p.total;
  const at = done / scale;
  const part = Math.min(parts.length - 1, Math.floor(at));
  const partShare = Math.min(1, at - part);
  const w = plan.fixed + parts.slice(0, part).reduce((s, x) => s + x, 0) + parts[part] * partShare;
  return { share: Math.min(1, w / total), part, partShare };
}

/** The share of a phase's work a report says is done. */
export function phaseShare(plan: PhasePlan, p: Progress): number {
  return phasePosition(plan, p).share;
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
    case 'finish':
      return 'finish';
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
  finish: 'Saving the result',
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

/**
 * Follows one run. `update` takes each report with the time it arrived (seconds, any
 * origin; the first call's time is the start) and returns what to show.
 */
export class RunProgress {
  private readonly plans: Record<Phase, PhasePlan>;
  private readonly plan: Record<Phase, number>;
  private readonly total: number;
  private t0: number | undefined;
  private phase: Phase = 'start';
  /** where the phase under way is (part -1: it has not reported yet) */
  private pos: PhasePosition = { share: 0, part: -1, partShare: 0 };
  /** when the part under way began (seconds since the start) */
  private partStart = 0;
  /** the part's reports: when, and the share of it done */
  private partMarks: { t: number; f: number }[] = [];
  /** work done in phases that are over */
  private doneBefore = 0;
  private best = 0;
  /** the last report that moved the run on: its time, the work done, the time in its phase */
  private mark: { t: number; work: number } | undefined;
  /** seconds per unit between batches of the evaluations (averaged, the latest counting half) */
  private steady: number | undefined;
  /** where the run's pace is measured from: the first report after the start */
  private paceFrom: { t: number; work: number } | undefined;
  private readonly ptqLabel: string | undefined;

  constructor(input: RunPlanInput, costs: PhaseCosts = PHASE_COST) {
    this.plans = planPhases(input, costs);
    this.plan = planRun(input, costs);
    this.total = ORDER.reduce((s, k) => s + this.plan[k], 0);
    const m = input.config.ptq;
    this.ptqLabel = m === 'none' ? undefined : PTQ_LABEL[m];
  }

  update(p: Progress, now: number): RunProgressView {
    if (this.t0 === undefined) this.t0 = now;
    const elapsed = now - this.t0;
    const phase = phaseOf(p);
    const at = ORDER.indexOf(phase);
    const cur = ORDER.indexOf(this.phase);
    let moved = false;
    if (at > cur) {
      // every phase up to this one is over (some report nothing, e.g. a cached decode)
      this.doneBefore = ORDER.slice(0, at).reduce((s, k) => s + this.plan[k], 0);
      if (cur === 0) this.paceFrom = { t: elapsed, work: this.doneBefore };
      this.phase = phase;
      this.pos = { share: 0, part: -1, partShare: 0 };
      moved = true;
    }
    if (at === ORDER.indexOf(this.phase)) {
      const pos = phasePosition(this.plans[this.phase], p);
      if (pos.share > this.pos.share || moved) {
        if (pos.part !== this.pos.part) {
          // a report at a part's very start marks it; one that already counts work (the
          // calibration's 16/16) comes later: the part began with the report before it
          this.partStart = pos.partShare > 0 && this.mark ? this.mark.t : elapsed;
          this.partMarks = [{ t: this.partStart, f: 0 }];
        }
        this.partMarks.push({ t: elapsed, f: pos.partShare });
        const steady = STEADY.has(this.phase) && pos.part === this.pos.part && pos.partShare > this.pos.partShare;
        this.pos = pos;
        moved = true;
        const w = this.doneBefore + this.plan[this.phase] * pos.share;
        if (steady && this.mark && w > this.mark.work) {
          const pace = (elapsed - this.mark.t) / (w - this.mark.work);
          this.steady = this.steady === undefined ? pace : (this.steady + pace) / 2;
        }
      }
    }
    const curWork = this.plan[this.phase];
    const doneWork = this.doneBefore + curWork * this.pos.share;
    const fraction = this.total > 0 ? Math.min(1, doneWork / this.total) : 0;
    this.best = Math.max(this.best, fraction);
    if (moved) this.mark = { t: elapsed, work: doneWork };

    return {
      fraction: this.best,
      phase: this.phase,
      stage: this.stageName(),
      counter: this.counter(p),
      detail: this.detail(p),
      etaSeconds: this.eta(elapsed),
      elapsed,
    };
  }

  /**
   * Seconds left, from the last report that moved the run on (`mark`): what the reports
   * said then, less the time since. Between reports the clock runs on while the work done
   * stands still, so the pace is never taken at `now` (a phase that reports only at its
   * end would otherwise make every later phase look slower the longer it runs).
   */
  private eta(elapsed: number): number | undefined {
    const m = this.mark;
    if (!m || m.work <= 0 || m.t <= 0) return undefined;
    // decoding is image files, not the model: its pace says little about the model's (in the
    // browser it ran at twice the seconds per unit of the evaluations), so the first basis
    // is the FP32 evaluation's first report
    if (ORDER.indexOf(this.phase) < ORDER.indexOf('fp32')) return undefined;
    // seconds per unit: the steady pace of the latest evaluation (the unit's own measure,
    // batch to batch, so it follows the machine's load); before the first, the run's pace
    // since the engine started (its start is a one-off of unknown length)
    const from = this.paceFrom;
    const rate =
      this.steady ??
      (from && m.t > from.t && m.work > from.work ? (m.t - from.t) / (m.work - from.work) : m.t / m.work);
    const i = ORDER.indexOf(this.phase);
    const plan = this.plans[this.phase];
    const { part, partShare: f } = this.pos;
    // the part under way: its planned work left at the run's pace, and once it has
    // reported its own pace, trusted more as more of it is done (fully from OWN_PACE_FULL on);
    // the phase's later parts (the analysis' evaluations after its per-layer error) at the run's pace
    const partWork = part < 0 ? work(plan) : plan.parts[part];
    const prior = partWork * (1 - f) * rate;
    // its own pace over the latter half of its time so far: a reconstruction's layers, or a
    // machine whose load changes, make the recent pace the better guide
    const inPart = m.t - this.partStart;
    const ref = this.partMarks.find((x) => x.t >= this.partStart + inPart / 2 && x.f < f) ?? this.partMarks[0];
    const own = f > 0 && inPart > 0.5 && ref && f > ref.f ? ((m.t - ref.t) * (1 - f)) / (f - ref.f) : prior;
    const trust = Math.min(1, f / OWN_PACE_FULL);
    const laterParts = part < 0 ? 0 : plan.parts.slice(part + 1).reduce((s, x) => s + x, 0);
    const left = [
      (1 - trust) * prior + trust * own,
      laterParts * rate,
      ...ORDER.slice(i + 1).map((k) => this.plan[k] * rate),
    ];
    // the time since the mark went into the first phase with work left; one slower than
    // planned keeps a quarter of its plan (it is not done until it says so)
    let since = elapsed - m.t;
    let eta = 0;
    for (const s of left) {
      if (s <= 0) continue;
      if (since > 0) {
        eta += Math.max(s - since, 0.25 * s);
        since = 0;
      } else eta += s;
    }
    return eta;
  }

  private stageName(): string {
    if (this.phase === 'weights' && this.ptqLabel) return `Optimizing rounding (${this.ptqLabel})`;
    return PHASE_NAMES[this.phase];
  }

  private counter(p: Progress): string {
    if (phaseOf(p) !== this.phase) return '';
    if (p.count)
      return ONE_OF[p.count.of]
        ? `${ONE_OF[p.count.of]} ${p.count.done} / ${p.count.total}`
        : `${p.count.done} / ${p.count.total} ${p.count.of}`;
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

/** Counters read as "layer 3 / 51", "block 3 / 18" rather than "3 / 18 blocks". */
const ONE_OF: Record<string, string> = { layers: 'layer', blocks: 'block' };

/** Phases that count images batch by batch: their pace between batches is the unit's measure. */
const STEADY: ReadonlySet<Phase> = new Set(['fp32', 'evaluate', 'before']);

/** From this share of a phase done on, its time left comes from its own pace alone (blended before). */
export const OWN_PACE_FULL = 0.5;

/** Below this many seconds left, an estimate counts as right when it is this close in seconds. */
export const ETA_SLACK_S = 3;

/**
 * The promise the estimate keeps once a tenth of the run has passed: within a factor of two
 * of the time really left, or within ETA_SLACK_S seconds of it (in the last seconds a factor
 * means nothing: 0.4 s left shown as 1 s is not wrong).
 */
export function etaWithin(estimate: number, truth: number): boolean {
  if (Math.abs(estimate - truth) <= ETA_SLACK_S) return true;
  return estimate >= truth / 2 && estimate <= truth * 2;
}
