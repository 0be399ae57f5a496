/**
 * The search panel's state (state/search.svelte.ts, state/search-view.ts) against a fake
 * QuantApi: what the inputs ask the worker for, progress while it runs, the outcome kept for
 * the result it was searched from, a refusal or a cancel shown as data; the plan in
 * evaluations equals what the searches run on a synthetic case; the ranking rows and the
 * chart's points (each a share link that opens its config) say what the numbers are.
 */
import { describe, expect, it, vi } from 'vitest';
import type { Remote } from 'comlink';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { parseLink, serializeLink } from '../../src/lib/config/link.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import type { QuantApi } from '../../src/lib/protocol/api.ts';
import type { SearchOutcome, SearchProgress, SearchRequest } from '../../src/lib/protocol/search.ts';
import { accuracyControl, type Evaluate, type SearchLayer } from '../../src/lib/search/accuracy-control.ts';
import { paretoFront } from '../../src/lib/search/pareto.ts';
import {
  controlSummary,
  frontPoints,
  planLayers,
  rankingRows,
  SEARCH_DEFAULTS,
  SearchState,
  searchPlan,
} from '../../src/lib/state/search.svelte.ts';

const base = resolveConfig({ backend: 'academic', wBits: 4, model: 'mobilenet-v2', eval: 64, firstLast8bit: false });

function outcome(over: Partial<SearchOutcome> = {}): SearchOutcome {
  const kept = { ...base, layerBits: { conv2: 8 } };
  return {
    base,
    fp32: { top1: 0.8, images: 64 },
    rankImages: 32,
    layers: 3,
    control: {
      maxDrop: 1,
      met: true,
      kept: ['conv2'],
      highBits: 8,
      top1: 0.796875,
      drop: 0.003125,
      sizeBits: 4 * 1000 + 8 * 3000 + 4 * 2000,
      baseTop1: 0.5,
      baseSizeBits: 4 * 6000,
      config: kept,
      ranking: [
        { layer: 'conv2', params: 3000, bits: 4, gain: 0.25, agreementGain: 0.3 },
        { layer: 'conv1', params: 1000, bits: 4, gain: 0.03125, agreementGain: 0 },
        { layer: 'fc', params: 2000, bits: 4, gain: -0.03125, agreementGain: 0 },
      ],
      evaluations: 9,
    },
    front: {
      bits: [2, 4, 8],
      points: [
        {
          config: { ...base, layerBits: { conv1: 2, conv2: 2, fc: 2 } },
          sizeBits: 12000,
          top1: 0.1,
          predictedCost: 0.9,
          front: true,
        },
        {
          config: { ...base, layerBits: { conv2: 8, fc: 2 } },
          sizeBits: 32000,
          top1: 0.7,
          predictedCost: 0.1,
          front: true,
        },
        {
          config: { ...base, layerBits: { conv1: 8, conv2: 8, fc: 8 } },
          sizeBits: 48000,
          top1: 0.6,
          predictedCost: 0.2,
          front: false,
        },
      ],
      uniform: { top1: 0.5, sizeBits: 24000 },
      evaluations: 14,
    },
    evaluations: 23,
    seconds: 12,
    engine: 'onnxruntime-web wasm',
    ...over,
  };
}

describe('SearchState', () => {
  it('asks for the inputs, shows progress, keeps the outcome for its result', async () => {
    let seen: SearchProgress | undefined;
    let asked: SearchRequest | undefined;
    const api = {
      searchPrecision: vi.fn(
        async (c: ExperimentConfig, engine: string, req: SearchRequest, onProgress?: (p: SearchProgress) => void) => {
          asked = req;
          onProgress?.({ done: 3, total: 40, message: 'Ranking: evaluation 3' });
          seen = s.progress;
          expect(s.running).toBe(true);
          return { ok: true as const, value: outcome({ base: c }) };
        },
      ),
      cancel: vi.fn(async () => undefined),
    };
    const s = new SearchState(
      () => api as unknown as Remote<QuantApi>,
      () => 'wasm',
    );
    expect(s.maxDrop).toBe(1);
    expect(s.request).toEqual({
      prune: false,
      maxDrop: 1,
      rankImages: SEARCH_DEFAULTS.rankImages,
      checkImages: SEARCH_DEFAULTS.checkImages,
      paretoBits: undefined,
      paretoPoints: undefined,
    });
    s.maxDrop = 0.5;
    s.rankImages = 16.4;
    s.checkImages = 100;
    s.withFront = true;
    s.prune = true;
    s.frontBits = [8, 2, 4];
    await s.run(base, 'h1');
    expect(api.searchPrecision).toHaveBeenCalledOnce();
    expect(api.searchPrecision.mock.calls[0][1]).toBe('wasm');
    expect(asked).toEqual({
      prune: true,
      maxDrop: 0.5,
      rankImages: 16,
      checkImages: 100,
      paretoBits: [2, 4, 8],
      paretoPoints: SEARCH_DEFAULTS.frontPoints,
    });
    expect(seen).toEqual({ done: 3, total: 40, message: 'Ranking: evaluation 3' });
    expect(s.running).toBe(false);
    expect(s.progress).toBeUndefined();
    expect(s.of('h1')?.control.kept).toEqual(['conv2']);
    // another result's view does not show it
    expect(s.of('h2')).toBeUndefined();
  });

  it('shows a refusal as data, keeps the earlier outcome, and cancels through the worker once', async () => {
    let release: () => void = () => undefined;
    const api = {
      searchPrecision: vi.fn(
        () =>
          new Promise((resolve) => {
            release = () =>
              resolve({ ok: false, error: { code: 'CANCELLED', message: 'Cancelled.', userError: true } });
          }),
      ),
      cancel: vi.fn(async () => release()),
    };
    const s = new SearchState(
      () => api as unknown as Remote<QuantApi>,
      () => 'auto',
    );
    s.outcome = { forHash: 'h0', value: outcome() };
    const run = s.run(base, 'h1');
    // a second start while running is ignored
    await s.run(base, 'h1');
    expect(api.searchPrecision).toHaveBeenCalledOnce();
    s.cancel();
    expect(s.cancelling).toBe(true);
    s.cancel();
    await run;
    expect(api.cancel).toHaveBeenCalledOnce();
    expect(s.error?.code).toBe('CANCELLED');
    expect(s.running).toBe(false);
    expect(s.cancelling).toBe(false);
    expect(s.of('h1')).toBeUndefined();
    expect(s.of('h0')).toBeDefined();
  });
});

describe('search view', () => {
  it('the plan is what the searches run when every layer must be ranked and nothing is pruned (the front: at most)', async () => {
    const layers: SearchLayer[] = ['a', 'b', 'c', 'd', 'e'].map((layer, i) => ({
      layer,
      params: 100 * (i + 1),
      bits: 4,
    }));
    // every layer costs 1 point at 4 bits; keeping all gets back to FP32
    let calls = 0;
    const evaluate: Evaluate = async (cfg) => {
      calls++;
      const low = layers.filter((l) => (cfg.layerBits[l.layer] ?? cfg.wBits) < 8).length;
      return { top1: 0.8 - 0.01 * low, preds: Int32Array.from({ length: 10 }, (_, i) => (i < low ? 1 : 0)) };
    };
    const ref = { top1: 0.8, preds: new Int32Array(10) };
    const plan = searchPlan(layers, 4, { paretoBits: [2, 4, 8], paretoPoints: 3 })!;
    const c = await accuracyControl({
      base,
      layers,
      reference: { validate: ref, rank: ref },
      maxDrop: 0,
      evaluate,
      prune: false,
    });
    expect(c.evaluations).toBe(plan.search);
    const before = calls;
    const p = await paretoFront({ base, layers, bits: [2, 4, 8], points: 3, evaluate });
    // at most: the points are as many as the model front has distinct sizes
    expect(calls - before).toBe(p.evaluations);
    expect(p.evaluated.length).toBeLessThanOrEqual(3);
    expect(p.evaluations).toBe(plan.front - 3 + p.evaluated.length);
    expect(plan.text).toMatch(/^5 weight layers: .* about 11 .* the front at most 15 more$/);
    expect(searchPlan(undefined, 4, {})).toBeUndefined();
    // without the weight view: the result's weight quantizers, first and last at 8 bits when the preset says so
    expect(planLayers({ wBits: 4, firstLast8bit: true }, 5).map((l) => l.bits)).toEqual([8, 4, 4, 4, 8]);
    expect(searchPlan(planLayers({ wBits: 4, firstLast8bit: true }, 5), 4, {})!.search).toBe(3 + 3 + 2);
    expect(planLayers({ wBits: 4, firstLast8bit: true }, 5, layers)).toEqual(layers);
  });

  it('says what the outcome is, ranks the layers with their gain, and marks the kept ones', () => {
    const o = outcome();
    expect(controlSummary(o)).toEqual({
      verdict: '1 of 3 layers kept at 8 bits',
      top1: '79.7% (FP32 80.0%, drop 0.3 points)',
      size: '4.4 KiB (150.0% of the preset\u2019s 2.9 KiB)'.replace('\u2019', "'"),
      base: '50.0% at 2.9 KiB',
    });
    expect(controlSummary(outcome({ control: { ...o.control, met: false } })).verdict).toMatch(/not met/);
    expect(controlSummary(outcome({ control: { ...o.control, kept: [] } })).verdict).toMatch(/already meets/);
    const rows = rankingRows(o, new Map([['conv2', { label: 'block 1 · conv 3×3' }]]));
    expect(rows.map((r) => [r.label, r.gain, r.bits, r.kept])).toEqual([
      ['block 1 · conv 3×3', '+25.0', '4 → 8', true],
      ['conv1', '+3.1', '4 → 8', false],
      ['fc', '−3.1', '4 → 8', false],
    ]);
  });

  it('each chart point is a link to its config, with the uniform preset as its own point', () => {
    const o = outcome();
    const linkFor = (c: ExperimentConfig) => serializeLink(c, [], {});
    const pts = frontPoints(o, linkFor);
    expect(pts.map((p) => p.kind)).toEqual(['point', 'point', 'point', 'uniform']);
    for (const [i, p] of pts.slice(0, 3).entries()) {
      expect(p.href.startsWith('#')).toBe(true);
      expect(parseLink(p.href.slice(1)).config.layerBits).toEqual(o.front!.points[i].config.layerBits);
      expect(p.top1).toBeCloseTo(100 * o.front!.points[i].top1, 9);
    }
    expect(pts[1].title).toMatch(/1×2b 1×8b/);
    const u = pts[3];
    expect(parseLink(u.href.slice(1)).config.layerBits).toEqual({});
    expect(u.top1).toBe(50);
    expect(u.size).toBeCloseTo(24000 / 8 / 2 ** 20, 12);
    expect(frontPoints(outcome({ front: undefined }), linkFor)).toEqual([]);
  });
});
