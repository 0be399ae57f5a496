/**
 * The size-versus-top-1 front over per-layer weight bit widths (2–8 bits) for one preset:
 * which mix of bit widths gives the most accuracy for a given weight size.
 *
 * 1. Cost of each choice, measured: each layer alone at each lower bit width (every other
 *    layer at the base config's bits), the cost being the fraction of ranking images whose
 *    top-1 class changes against the base config (finer than top-1 on a small subset).
 * 2. The front of the additive model Σ cost: an exact dynamic programme over layers that
 *    keeps, for every reachable weight size, the cheapest choice (multiple-choice knapsack;
 *    dominated states are dropped, and beyond `maxStates` the nearest sizes are merged).
 * 3. `points` configs spread evenly over the model front's sizes are evaluated for real on
 *    the validation images; the measured front is what is returned, each point a config
 *    with its share link. The base config (every layer at the preset's bits) is validated
 *    too, as the reference a point's drop is read against (`uniform`).
 * Like accuracy-control.ts it runs nothing itself: `evaluate` is injected.
 */
import type { ExperimentConfig } from '../config/types.ts';
import { type LinkExtras, serializeLink } from '../config/link.ts';
import { agreement } from '../quant/metrics.ts';
import { type Evaluate, type SearchLayer, sizeOf } from './accuracy-control.ts';

/** Bit widths a front may use, and the app's default count of points evaluated. */
export const FRONT_BITS = [2, 3, 4, 5, 6, 7, 8] as const;
export const FRONT_POINTS = 6;

export interface ParetoOptions {
  base: ExperimentConfig;
  layers: readonly SearchLayer[];
  /** bit widths a layer may take (default 2…8) */
  bits?: readonly number[];
  evaluate: Evaluate;
  /** configs evaluated on the validation images (default 8) */
  points?: number;
  /** state cap of the dynamic programme (default 4000) */
  maxStates?: number;
  /** what the share links carry beyond the config (model, data) */
  link?: LinkExtras;
  onProgress?: (message: string, done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface ModelPoint {
  sizeBits: number;
  /** predicted cost: Σ of the per-layer costs */
  cost: number;
  /** layer → bits */
  bits: Record<string, number>;
}

export interface ParetoPoint {
  config: ExperimentConfig;
  sizeBits: number;
  predictedCost: number;
  top1: number;
  /** share link hash (without '#') */
  url: string;
}

export interface ParetoResult {
  /** cost[layer][bits], measured */
  costs: Record<string, Record<number, number>>;
  /** the additive model's front, smallest first */
  model: ModelPoint[];
  /** every evaluated point, smallest first */
  evaluated: ParetoPoint[];
  /** the non-dominated evaluated points (no other is smaller and at least as accurate) */
  front: ParetoPoint[];
  /** the base config (every layer at the preset's bits) on the validation images */
  uniform: { top1: number; sizeBits: number };
  evaluations: number;
}

/**
 * Evaluations `paretoFront` runs at most: the base on both image sets, each layer's other
 * choices, the points (fewer when the model front has fewer distinct sizes).
 */
export function paretoEvaluations(
  layers: readonly { bits: number }[],
  bits: readonly number[] = FRONT_BITS,
  points = 8,
): number {
  const choices = layers.reduce((n, l) => n + bits.filter((b) => b !== l.bits).length, 0);
  return 2 + choices + points;
}

/**
 * The front of Σ cost over per-layer choices (exact up to the state cap). `costs[l][b]`
 * is layer l's cost at b bits; `sizes` per layer param counts. Pure.
 */
export function additiveFront(
  layers: readonly { layer: string; params: number }[],
  choices: readonly number[],
  costs: Readonly<Record<string, Readonly<Record<number, number>>>>,
  maxStates = 4000,
): ModelPoint[] {
  type State = { size: number; cost: number; bits: number[] };
  let states: State[] = [{ size: 0, cost: 0, bits: [] }];
  for (const l of layers) {
    const next: State[] = [];
    for (const s of states)
      for (const b of choices)
        next.push({ size: s.size + l.params * b, cost: s.cost + costs[l.layer][b], bits: [...s.bits, b] });
    next.sort((a, b) => a.size - b.size || a.cost - b.cost);
    let kept: State[] = [];
    let best = Infinity;
    for (const s of next) {
      if (s.cost < best - 1e-15) {
        kept.push(s);
        best = s.cost;
      }
    }
    if (kept.length > maxStates) {
      // merge neighbours in size: keep the cheapest state of each size bucket
      const lo = kept[0].size;
      const span = kept[kept.length - 1].size - lo || 1;
      const buckets = new Map<number, State>();
      for (const s of kept) {
        const k = Math.floor(((s.size - lo) / span) * (maxStates - 1));
        const have = buckets.get(k);
        if (!have || s.cost < have.cost) buckets.set(k, s);
      }
      kept = [...buckets.values()].sort((a, b) => a.size - b.size);
    }
    states = kept;
  }
  return states.map((s) => ({
    sizeBits: s.size,
    cost: s.cost,
    bits: Object.fromEntries(layers.map((l, i) => [l.layer, s.bits[i]])),
  }));
}

/** Points no other point beats: smaller or equal size with higher or equal top-1 (one strictly). */
export function nonDominated<T extends { sizeBits: number; top1: number }>(pts: readonly T[]): T[] {
  return pts.filter(
    (p) =>
      !pts.some(
        (q) => q !== p && q.sizeBits <= p.sizeBits && q.top1 >= p.top1 && (q.sizeBits < p.sizeBits || q.top1 > p.top1),
      ),
  );
}

/** The measured size-versus-top-1 front (see module header). Throws what `evaluate` throws. */
export async function paretoFront(o: ParetoOptions): Promise<ParetoResult> {
  const choices = [...(o.bits ?? FRONT_BITS)].sort((a, b) => a - b);
  let evaluations = 0;
  const check = () => {
    if (o.signal?.aborted) throw o.signal.reason ?? new Error('aborted');
  };
  const ref = await o.evaluate(o.base, 'rank');
  evaluations++;
  const costs: Record<string, Record<number, number>> = {};
  const total = o.layers.length * choices.length;
  let done = 0;
  for (const l of o.layers) {
    costs[l.layer] = {};
    for (const b of choices) {
      done++;
      if (b === l.bits) {
        costs[l.layer][b] = 0;
        continue;
      }
      check();
      o.onProgress?.(`Cost of ${l.layer} at ${b} bits`, done, total);
      const r = await o.evaluate({ ...o.base, layerBits: { ...o.base.layerBits, [l.layer]: b } }, 'rank');
      evaluations++;
      costs[l.layer][b] = 1 - agreement(r.preds, ref.preds);
    }
  }
  const model = additiveFront(o.layers, choices, costs, o.maxStates);
  const n = Math.min(o.points ?? 8, model.length);
  const picks = new Set<number>();
  const lo = model[0].sizeBits;
  const hi = model[model.length - 1].sizeBits;
  for (let k = 0; k < n; k++) {
    const target = n === 1 ? hi : lo + ((hi - lo) * k) / (n - 1);
    let best = 0;
    for (let i = 1; i < model.length; i++)
      if (Math.abs(model[i].sizeBits - target) < Math.abs(model[best].sizeBits - target)) best = i;
    picks.add(best);
  }
  const evaluated: ParetoPoint[] = [];
  for (const [k, i] of [...picks].sort((a, b) => a - b).entries()) {
    const m = model[i];
    const config = { ...o.base, layerBits: { ...o.base.layerBits, ...m.bits } };
    check();
    o.onProgress?.(`Evaluating point ${k + 1}/${picks.size}`, k + 1, picks.size);
    const v = await o.evaluate(config, 'validate');
    evaluations++;
    evaluated.push({
      config,
      sizeBits: sizeOf(o.layers, config),
      predictedCost: m.cost,
      top1: v.top1,
      url: serializeLink(config, [], o.link ?? {}),
    });
  }
  check();
  o.onProgress?.("Evaluating every layer at the preset's bits", picks.size, picks.size);
  const uniform = { top1: (await o.evaluate(o.base, 'validate')).top1, sizeBits: sizeOf(o.layers, o.base) };
  evaluations++;
  return { costs, model, evaluated, front: nonDominated(evaluated), uniform, evaluations };
}
