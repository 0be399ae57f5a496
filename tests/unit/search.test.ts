/**
 * The accuracy-aware search and the size/top-1 front (src/lib/search) on synthetic cases
 * whose optimum is known by brute force: each layer at low bits costs a fixed number of
 * top-1 points (costs add up), evaluated by an injected evaluator that counts its calls.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import { accuracyControl, sizeOf, type Evaluate, type SearchLayer } from '../../src/lib/search/accuracy-control.ts';
import { additiveFront, nonDominated, paretoFront } from '../../src/lib/search/pareto.ts';
import { parseLink } from '../../src/lib/config/link.ts';
import { checkSearchRequest } from '../../src/lib/search/session.ts';

const base = resolveConfig({ backend: 'academic', wBits: 4, firstLast8bit: false });
const FP32 = 0.8;

/** top-1 = FP32 − Σ damage of the layers below 8 bits (damage × (8 − bits) / 4). */
function synthetic(damage: Record<string, number>): { evaluate: Evaluate; calls: () => number } {
  let n = 0;
  const evaluate: Evaluate = async (cfg: ExperimentConfig) => {
    n++;
    let top1 = FP32;
    for (const [l, d] of Object.entries(damage)) {
      const bits = cfg.layerBits[l] ?? cfg.wBits;
      top1 -= (d * Math.max(0, 8 - bits)) / 4;
    }
    return { top1, preds: new Int32Array(4) };
  };
  return { evaluate, calls: () => n };
}

function bruteForce(layers: SearchLayer[], damage: Record<string, number>, maxDrop: number) {
  let best: { kept: string[]; size: number } | undefined;
  for (let mask = 0; mask < 1 << layers.length; mask++) {
    const kept = layers.filter((_, i) => mask & (1 << i)).map((l) => l.layer);
    const drop = layers.filter((l) => !kept.includes(l.layer)).reduce((s, l) => s + damage[l.layer], 0);
    if (drop > maxDrop + 1e-12) continue;
    const size = sizeOf(layers, { ...base, layerBits: Object.fromEntries(kept.map((k) => [k, 8])) });
    if (!best || kept.length < best.kept.length || (kept.length === best.kept.length && size < best.size))
      best = { kept, size };
  }
  return best!;
}

describe('accuracy-aware search', () => {
  const layers: SearchLayer[] = [
    { layer: 'a', params: 100, bits: 4 },
    { layer: 'b', params: 900, bits: 4 },
    { layer: 'c', params: 50, bits: 4 },
    { layer: 'd', params: 400, bits: 4 },
    { layer: 'e', params: 400, bits: 4 },
  ];
  const damage = { a: 0.005, b: 0.03, c: 0.002, d: 0.02, e: 0.02 };

  it('finds the known optimum: fewest layers kept, then the smallest size', async () => {
    const { evaluate, calls } = synthetic(damage);
    for (const maxDrop of [0.01, 0.03, 0.05, 0.08]) {
      const r = await accuracyControl({
        base,
        layers,
        reference: { validate: { top1: FP32, preds: new Int32Array(4) } },
        maxDrop,
        evaluate,
      });
      const want = bruteForce(layers, damage, maxDrop);
      expect(r.met).toBe(true);
      expect(r.drop).toBeLessThanOrEqual(maxDrop + 1e-12);
      expect([...r.kept].sort(), `max drop ${maxDrop}`).toEqual([...want.kept].sort());
      expect(r.sizeBits).toBe(want.size);
      expect(r.config.layerBits).toEqual(Object.fromEntries(r.kept.map((k) => [k, 8])));
    }
    expect(calls()).toBeGreaterThan(0);
  });

  it('ranks the most costly first; ties go to the smaller layer', async () => {
    const { evaluate } = synthetic(damage);
    const r = await accuracyControl({
      base,
      layers,
      reference: { validate: { top1: FP32, preds: new Int32Array(4) } },
      maxDrop: 0.01,
      evaluate,
    });
    expect(r.ranking.map((l) => l.layer)).toEqual(['b', 'd', 'e', 'a', 'c']);
    expect(r.ranking[0].gain).toBeCloseTo(0.03, 12);
  });

  it('finds the shortest prefix of the ranking by bisection: logarithmic validations without the pruning pass', async () => {
    // 16 layers, layer i costs (16 − i) × 0.001, so the ranking is l0, l1, …; the shortest
    // prefix within budget is found by summing the costs of the layers left at low bits
    const many: SearchLayer[] = Array.from({ length: 16 }, (_, i) => ({ layer: `l${i}`, params: 100, bits: 4 }));
    const cost = Object.fromEntries(many.map((l, i) => [l.layer, (16 - i) * 0.001]));
    const maxDrop = 0.01;
    const left = (k: number) => many.slice(k).reduce((sum, l) => sum + cost[l.layer], 0);
    let want = 0;
    while (left(want) > maxDrop + 1e-12) want++;
    const { evaluate, calls } = synthetic(cost);
    const r = await accuracyControl({
      base,
      layers: many,
      reference: { validate: { top1: FP32, preds: new Int32Array(4) } },
      maxDrop,
      evaluate,
      prune: false,
    });
    expect(r.met).toBe(true);
    expect(r.kept).toEqual(many.slice(0, want).map((l) => l.layer));
    expect(r.drop).toBeLessThanOrEqual(maxDrop + 1e-12);
    // one validation of all at low bits, the base and 16 layers ranked, then the full prefix
    // and ⌈log2 16⌉ halvings (one per layer, as NNCF does, would be up to 16)
    const bisection = calls() - 2 - many.length;
    expect(bisection).toBeLessThanOrEqual(1 + Math.ceil(Math.log2(many.length)));
    expect(r.evaluations).toBe(calls());
  });

  it('keeps nothing when the quantized model is already within budget, and says when the budget cannot be met', async () => {
    const { evaluate, calls } = synthetic(damage);
    const ok = await accuracyControl({
      base,
      layers,
      reference: { validate: { top1: FP32, preds: new Int32Array(4) } },
      maxDrop: 0.2,
      evaluate,
    });
    expect([ok.kept, ok.met, calls()]).toEqual([[], true, 1]);
    const never = await accuracyControl({
      base,
      layers,
      reference: { validate: { top1: FP32 + 0.1, preds: new Int32Array(4) } },
      maxDrop: 0.01,
      evaluate,
    });
    expect(never.met).toBe(false);
    expect(never.kept).toHaveLength(layers.length);
  });
});

describe('size versus top-1 front', () => {
  const layers: SearchLayer[] = [
    { layer: 'a', params: 10, bits: 8 },
    { layer: 'b', params: 30, bits: 8 },
    { layer: 'c', params: 20, bits: 8 },
  ];
  const choices = [2, 4, 8];
  const costs: Record<string, Record<number, number>> = {
    a: { 2: 0.5, 4: 0.1, 8: 0 },
    b: { 2: 0.05, 4: 0.01, 8: 0 },
    c: { 2: 0.3, 4: 0.2, 8: 0 },
  };

  it('the dynamic programme gives the brute-force front of the additive model', () => {
    const all: { sizeBits: number; top1: number }[] = [];
    for (const a of choices)
      for (const b of choices)
        for (const c of choices)
          all.push({ sizeBits: 10 * a + 30 * b + 20 * c, top1: -(costs.a[a] + costs.b[b] + costs.c[c]) });
    const want = nonDominated(all)
      .map((p) => [p.sizeBits, +(-p.top1).toFixed(9)])
      .sort((x, y) => x[0] - y[0]);
    const got = additiveFront(layers, choices, costs).map((p) => [p.sizeBits, +p.cost.toFixed(9)]);
    expect(got).toEqual(want);
  });

  it('measures each choice, evaluates points along the front, each a config with its link', async () => {
    const base8 = resolveConfig({ backend: 'academic', wBits: 8, firstLast8bit: false });
    // top-1 loses the cost; preds change on a share of 100 images equal to the cost
    const evaluate: Evaluate = async (cfg) => {
      let cost = 0;
      for (const l of layers) cost += costs[l.layer][cfg.layerBits[l.layer] ?? cfg.wBits];
      const preds = Int32Array.from({ length: 100 }, (_, i) => (i < Math.round(cost * 100) ? 1 : 0));
      return { top1: FP32 - cost / 10, preds };
    };
    const r = await paretoFront({ base: base8, layers, bits: choices, evaluate, points: 4 });
    expect(r.costs.a[2]).toBeCloseTo(0.5, 9);
    expect(r.evaluated).toHaveLength(4);
    expect(r.front.length).toBeGreaterThan(1);
    for (const p of r.front) {
      expect(parseLink(p.url).config.layerBits).toEqual(p.config.layerBits);
      expect(p.top1).toBeCloseTo(FP32 - p.predictedCost / 10, 9);
    }
    expect(r.evaluated[0].sizeBits).toBe(2 * 60);
    expect(r.evaluated[r.evaluated.length - 1].sizeBits).toBe(8 * 60);
    // the reference: every layer at the preset's bits, validated
    expect(r.uniform).toEqual({ top1: FP32, sizeBits: 8 * 60 });
  });

  it('stops at an aborted signal between evaluations', async () => {
    const base8 = resolveConfig({ backend: 'academic', wBits: 8, firstLast8bit: false });
    const ac = new AbortController();
    let n = 0;
    const evaluate: Evaluate = async () => {
      if (++n === 3) ac.abort(new Error('stop'));
      return { top1: FP32, preds: new Int32Array(4) };
    };
    await expect(paretoFront({ base: base8, layers, bits: choices, evaluate, signal: ac.signal })).rejects.toThrow(
      'stop',
    );
    expect(n).toBe(3);
  });
});

describe('checkSearchRequest', () => {
  it('refuses a budget, ranking count or bit list the searches cannot use, naming it', () => {
    expect(() => checkSearchRequest({ maxDrop: 1, rankImages: 32 })).not.toThrow();
    expect(() => checkSearchRequest({ maxDrop: -1, rankImages: 32 })).toThrow(/between 0 and 100 points, got -1/);
    expect(() => checkSearchRequest({ maxDrop: 1, rankImages: 0 })).toThrow(/at least 1, got 0/);
    expect(() => checkSearchRequest({ maxDrop: 1, rankImages: 8, checkImages: 0.5 })).toThrow(/at least 1, got 0.5/);
    expect(() => checkSearchRequest({ maxDrop: 1, rankImages: 8, paretoBits: [4] })).toThrow(/two bit widths/);
    expect(() => checkSearchRequest({ maxDrop: 1, rankImages: 8, paretoBits: [4, 16] })).toThrow(/between 2 and 8/);
  });
});
