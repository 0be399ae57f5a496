/**
 * What the search panel shows of a search (pure): the plan in evaluations before it runs,
 * the outcome in words, the ranking table, and the chart's points with their share links.
 * Must not: call the worker or hold state (state/search.svelte.ts does).
 */
import type { ExperimentConfig } from '../config/types.ts';
import type { SearchOutcome, SearchRequest } from '../protocol/search.ts';
import { controlEvaluations } from '../search/accuracy-control.ts';
import { FRONT_POINTS, paretoEvaluations } from '../search/pareto.ts';

/**
 * Defaults sized for the browser's wasm engine: ranking on 32 images, the budget checked on
 * the first 200 evaluation images, no re-quantizing pass, and a front over 2, 4 and 8 bits
 * (docs/imported-models.md has what MobileNet-V2 takes on wasm).
 */
export const SEARCH_DEFAULTS = {
  maxDrop: 1,
  rankImages: 32,
  checkImages: 200,
  frontBits: [2, 4, 8],
  frontPoints: FRONT_POINTS,
} as const;

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** A weight size in bits as KiB or MiB. */
export function sizeText(bits: number): string {
  return bits >= 8 * 2 ** 20 ? `${(bits / 8 / 2 ** 20).toFixed(2)} MiB` : `${(bits / 8 / 2 ** 10).toFixed(1)} KiB`;
}

/**
 * The layers a plan counts: the weight view's when it is drawn (each layer's bits), else
 * the result's weight quantizers at the preset's bits (the first and last at 8 bits when
 * the preset keeps them there; per-layer overrides are not known by index).
 */
export function planLayers(
  config: Pick<ExperimentConfig, 'wBits' | 'firstLast8bit'>,
  weightQuantizers: number,
  weightLayers?: readonly { bits: number; params: number }[],
): { bits: number; params: number }[] {
  if (weightLayers?.length) return [...weightLayers];
  const n = weightQuantizers;
  return Array.from({ length: n }, (_, i) => ({
    params: 0,
    bits: config.firstLast8bit && (i === 0 || i === n - 1) ? Math.max(8, config.wBits) : config.wBits,
  }));
}

/** Evaluations a request will take on these layers (the search's plan, the front's upper bound). */
export function searchPlan(
  layers: readonly { bits: number; params: number; layer?: string }[] | undefined,
  wBits: number,
  req: Pick<SearchRequest, 'paretoBits' | 'paretoPoints' | 'prune'>,
): { search: number; front: number; text: string } | undefined {
  if (!layers) return undefined;
  const c = controlEvaluations(
    layers.map((l, i) => ({ layer: l.layer ?? String(i), params: l.params, bits: l.bits })),
    wBits,
  );
  const front = req.paretoBits ? paretoEvaluations(layers, req.paretoBits, req.paretoPoints ?? FRONT_POINTS) : 0;
  const text =
    `${layers.length} weight layers: 1 evaluation when the preset already meets the budget, otherwise about ${c.planned} ` +
    `(${c.candidates} layers ranked one by one, then a bisection)` +
    (req.prune ? ' plus at most one per layer kept' : '') +
    (front ? `; the front at most ${front} more` : '');
  return { search: c.planned, front, text };
}

export interface RankingRow {
  layer: string;
  /** readable name when the layer graph knows it */
  label: string;
  /** top-1 points gained on the ranking images when only this layer is kept */
  gain: string;
  params: number;
  bits: string;
  kept: boolean;
}

/** The ranking table: most costly layer first, with what keeping it means. */
export function rankingRows(o: SearchOutcome, labels?: ReadonlyMap<string, { label: string }>): RankingRow[] {
  const kept = new Set(o.control.kept);
  return o.control.ranking.map((l) => ({
    layer: l.layer,
    label: labels?.get(l.layer)?.label ?? l.layer,
    gain: `${l.gain >= 0 ? '+' : '−'}${Math.abs(100 * l.gain).toFixed(1)}`,
    params: l.params,
    bits: `${l.bits} → ${o.control.highBits}`,
    kept: kept.has(l.layer),
  }));
}

/** The outcome of the search, in sentences' parts. */
export function controlSummary(o: SearchOutcome): {
  verdict: string;
  top1: string;
  size: string;
  base: string;
} {
  const c = o.control;
  return {
    verdict: c.met
      ? c.kept.length
        ? `${c.kept.length} of ${o.layers} layers kept at ${c.highBits} bits`
        : 'The preset already meets the budget: no layer kept'
      : `Budget not met even with every layer kept at ${c.highBits} bits`,
    top1: `${pct(c.top1)} (FP32 ${pct(o.fp32.top1)}, drop ${(100 * c.drop).toFixed(1)} points)`,
    size: `${sizeText(c.sizeBits)} (${((100 * c.sizeBits) / c.baseSizeBits).toFixed(1)}% of the preset's ${sizeText(c.baseSizeBits)})`,
    base: `${pct(c.baseTop1)} at ${sizeText(c.baseSizeBits)}`,
  };
}

export interface FrontPoint {
  kind: 'point' | 'uniform';
  sizeBits: number;
  /** MiB */
  size: number;
  /** top-1, percent */
  top1: number;
  front: boolean;
  /** share link (starting with '#') */
  href: string;
  title: string;
}

/** The chart's points: the evaluated configs and the uniform preset, each a share link. */
export function frontPoints(o: SearchOutcome, linkFor: (c: ExperimentConfig) => string): FrontPoint[] {
  const f = o.front;
  if (!f) return [];
  const mib = (bits: number) => bits / 8 / 2 ** 20;
  const bitsOf = (c: ExperimentConfig) => {
    const n = new Map<number, number>();
    for (const b of Object.values(c.layerBits)) n.set(b, (n.get(b) ?? 0) + 1);
    return [...n]
      .sort((a, b) => a[0] - b[0])
      .map(([b, k]) => `${k}×${b}b`)
      .join(' ');
  };
  return [
    ...f.points.map((p) => ({
      kind: 'point' as const,
      sizeBits: p.sizeBits,
      size: mib(p.sizeBits),
      top1: 100 * p.top1,
      front: p.front,
      href: `#${linkFor(p.config)}`,
      title: `${sizeText(p.sizeBits)}, top-1 ${pct(p.top1)}${p.front ? ' (on the front)' : ''}\nper-layer bits: ${bitsOf(p.config) || 'preset'}`,
    })),
    {
      kind: 'uniform' as const,
      sizeBits: f.uniform.sizeBits,
      size: mib(f.uniform.sizeBits),
      top1: 100 * f.uniform.top1,
      front: false,
      href: `#${linkFor(o.base)}`,
      title: `every layer at the preset's ${o.base.wBits} bits: ${sizeText(f.uniform.sizeBits)}, top-1 ${pct(f.uniform.top1)}`,
    },
  ];
}
