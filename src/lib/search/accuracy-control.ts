/**
 * Accuracy-aware mixed precision: given a largest allowed top-1 drop, find a small model
 * that stays within it, as NNCF's quantize_with_accuracy_control does: measure what each
 * layer costs (the top-1 gained on a ranking subset when that layer alone is reverted to a
 * higher precision), then revert the most costly layers until the drop on the validation
 * images is within budget. NNCF reverts them one at a time; here the shortest prefix of the
 * ranking within budget is found by bisection over its length (a handful of validations
 * instead of one per layer). A last pass tries to quantize each kept layer again, largest
 * first, and keeps it quantized when the budget still holds, so no kept layer is
 * superfluous (NNCF stops at the first config within budget).
 *
 * Only the layers' weight bits change (config.layerBits); "higher precision" is 8 bits for
 * a low-bit preset and 16 (float-like) for an 8-bit one. The search never runs a model
 * itself: it calls an injected `evaluate(config, purpose)`, so it is unit-testable with a
 * synthetic evaluator and the pipeline plugs in the real one. It is greedy: it finds the
 * fewest layers when the layers' costs add up (and ties go to the smaller layer); with
 * interacting layers it finds a good model, not always the smallest.
 */
import type { ExperimentConfig } from '../config/types.ts';
import type { LayerBits } from '../config/layer-bits.ts';
import { modelWeightBits } from '../analysis/sensitivity.ts';
import { agreement } from '../quant/metrics.ts';

/** What an evaluation returns: top-1 (fraction) and each image's top-1 class. */
export interface Evaluation {
  top1: number;
  preds: Int32Array;
}

/**
 * Evaluates a config. 'rank': the (smaller) ranking subset; 'validate': the images the
 * budget is checked on. The same purpose must always use the same images.
 */
export type Evaluate = (config: ExperimentConfig, purpose: 'rank' | 'validate') => Promise<Evaluation>;

/** A weight layer the search may keep at higher precision. */
export interface SearchLayer {
  /** ONNX node name (the layerBits key) */
  layer: string;
  /** weight parameter count */
  params: number;
  /** its bit width under the base config (firstLast8bit and layerBits applied) */
  bits: number;
}

export interface AccuracyControlOptions {
  /** the quantized config to start from (every layer at its preset bits) */
  base: ExperimentConfig;
  layers: readonly SearchLayer[];
  /** the float model's results: validation (and ranking, for agreement tie-breaks) */
  reference: { validate: Evaluation; rank?: Evaluation };
  /** largest allowed top-1 drop, as a fraction (0.01 = one point) */
  maxDrop: number;
  evaluate: Evaluate;
  /** bits of a kept layer (default 8 below 8 bits, else 16) */
  highBits?: number;
  /** try to quantize kept layers again (default true) */
  prune?: boolean;
  onProgress?: (message: string, done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface RankedLayer extends SearchLayer {
  /** top-1 gained on the ranking subset when only this layer is kept (fraction) */
  gain: number;
  /** agreement with the reference gained (fraction; 0 without a ranking reference) */
  agreementGain: number;
}

export interface SearchStep {
  kept: string[];
  top1: number;
  drop: number;
  sizeBits: number;
}

export interface AccuracyControlResult {
  /** most costly first */
  ranking: RankedLayer[];
  /** the layers kept at higher precision, in ranking order */
  kept: string[];
  config: ExperimentConfig;
  top1: number;
  drop: number;
  /** weight storage of the result and of the fully quantized base (Σ params × bits) */
  sizeBits: number;
  baseSizeBits: number;
  highBits: number;
  /** whether the budget was met (false: even every layer kept did not meet it) */
  met: boolean;
  /** every validated config, in order */
  steps: SearchStep[];
  evaluations: number;
}

/** The base config with `layers` at `bits`. */
export function keepAt(base: ExperimentConfig, layers: readonly string[], bits: number): ExperimentConfig {
  const layerBits: LayerBits = { ...base.layerBits };
  for (const l of layers) layerBits[l] = bits;
  return { ...base, layerBits };
}

/** Weight storage of a config over `layers` (Σ params × bits). */
export function sizeOf(layers: readonly SearchLayer[], cfg: ExperimentConfig): number {
  return modelWeightBits(
    layers.map((l) => ({ layer: l.layer, params: l.params, bits: l.bits })),
    cfg.wBits,
    cfg.layerBits,
  );
}

/**
 * Evaluations `accuracyControl` runs when the base config misses the budget (1 when it
 * meets it): the base on both image sets, each candidate layer kept alone, every candidate
 * kept, the bisection; the pruning pass adds at most one per kept layer (`perKept`).
 */
export function controlEvaluations(
  layers: readonly SearchLayer[],
  wBits: number,
  highBits = wBits < 8 ? 8 : 16,
): { planned: number; perKept: number; candidates: number } {
  const n = layers.filter((l) => l.bits < highBits).length;
  return { planned: 3 + n + Math.ceil(Math.log2(Math.max(1, n))), perKept: 1, candidates: n };
}

/** The accuracy-aware search (see module header). Throws what `evaluate` throws. */
export async function accuracyControl(o: AccuracyControlOptions): Promise<AccuracyControlResult> {
  const highBits = o.highBits ?? (o.base.wBits < 8 ? 8 : 16);
  const candidates = o.layers.filter((l) => l.bits < highBits);
  let evaluations = 0;
  const check = () => {
    if (o.signal?.aborted) throw o.signal.reason ?? new Error('aborted');
  };
  // a set of kept layers validated once (the pruning pass may meet a prefix the bisection tried)
  const validated = new Map<string, SearchStep>();
  const validate = async (kept: string[]): Promise<SearchStep> => {
    const key = [...kept].sort().join('\n');
    const seen = validated.get(key);
    if (seen) return { ...seen, kept };
    check();
    const cfg = keepAt(o.base, kept, highBits);
    const v = await o.evaluate(cfg, 'validate');
    evaluations++;
    const step = { kept, top1: v.top1, drop: o.reference.validate.top1 - v.top1, sizeBits: sizeOf(o.layers, cfg) };
    validated.set(key, step);
    return step;
  };
  const steps: SearchStep[] = [];
  const first = await validate([]);
  steps.push(first);
  const total = candidates.length + 1;
  let ranking: RankedLayer[] = [];
  let current = first;
  const within = (s: SearchStep) => s.drop <= o.maxDrop + 1e-12;
  if (!within(first)) {
    const q = await o.evaluate(o.base, 'rank');
    evaluations++;
    const ref = o.reference.rank?.preds;
    const agreeQ = ref ? agreement(q.preds, ref) : 0;
    for (const [i, l] of candidates.entries()) {
      check();
      o.onProgress?.(`Ranking layers: ${l.layer}`, i + 1, total);
      const r = await o.evaluate(keepAt(o.base, [l.layer], highBits), 'rank');
      evaluations++;
      ranking.push({ ...l, gain: r.top1 - q.top1, agreementGain: ref ? agreement(r.preds, ref) - agreeQ : 0 });
    }
    ranking = ranking.sort(
      (a, b) =>
        b.gain - a.gain ||
        b.agreementGain - a.agreementGain ||
        a.params * (highBits - a.bits) - b.params * (highBits - b.bits) ||
        a.layer.localeCompare(b.layer),
    );
    // the shortest prefix of the ranking within budget, by bisection over its length: the
    // drop falls as layers are kept, so O(log n) validations instead of one per layer
    // (where it does not fall monotonically the prefix found may be longer than needed, and
    // the pruning pass below removes what is superfluous)
    const prefix = (k: number) => ranking.slice(0, k).map((l) => l.layer);
    const byLength = new Map<number, SearchStep>([[0, first]]);
    const tryLength = async (k: number) => {
      o.onProgress?.(`Keeping ${k} layer(s) at ${highBits} bits`, byLength.size, total);
      const st = await validate(prefix(k));
      steps.push(st);
      byLength.set(k, st);
      return st;
    };
    let hi = ranking.length;
    current = await tryLength(hi);
    if (within(current)) {
      let lo = 0; // lo: not within budget; hi: within
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (within(await tryLength(mid))) hi = mid;
        else lo = mid;
      }
      current = byLength.get(hi)!;
    }
    if (within(current) && (o.prune ?? true)) {
      const cost = (name: string) => {
        const l = candidates.find((c) => c.layer === name)!;
        return l.params * (highBits - l.bits);
      };
      for (const name of [...current.kept].sort((a, b) => cost(b) - cost(a))) {
        const trial = current.kept.filter((k) => k !== name);
        const s = await validate(trial);
        steps.push(s);
        if (within(s)) current = s;
      }
    }
  }
  const config = keepAt(o.base, current.kept, highBits);
  return {
    ranking,
    kept: current.kept,
    config,
    top1: current.top1,
    drop: current.drop,
    sizeBits: current.sizeBits,
    baseSizeBits: first.sizeBits,
    highBits,
    met: within(current),
    steps,
    evaluations,
  };
}
