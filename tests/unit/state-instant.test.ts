/**
 * InstantState (state/instant.svelte.ts) against a fake worker: a newer change replaces an
 * older estimate (the older answer is dropped even when it arrives later), the estimate waits
 * for the debounce (the worker is asked to prepare each change meanwhile), a weight view
 * answers by version, readable names come from the graph.
 */
import { describe, expect, it } from 'vitest';
import { InstantState, ESTIMATE_DEBOUNCE_MS } from '../../src/lib/state/instant.svelte.ts';
import { defaultConfig } from '../../src/lib/config/resolve.ts';
import type { AccuracyEstimate, LayerGraphView, WeightView } from '../../src/lib/protocol/instant.ts';
import type { Result } from '../../src/lib/util/errors.ts';

const ok = <T>(value: T): Result<T> => ({ ok: true, value });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function estimateFor(hash: string): AccuracyEstimate {
  return {
    configHash: hash,
    images: 8,
    top1: 0.5,
    top1Interval: [0.2, 0.8],
    agreement: 0.75,
    agreementInterval: [0.4, 0.9],
    fp32Top1: 0.6,
    statsCached: true,
    seconds: 0.1,
  };
}

class Fake {
  estimates: { bits: number; resolve: (r: Result<AccuracyEstimate>) => void }[] = [];
  cancels = 0;
  weightView = async (c: { wBits: number }) =>
    ok({ key: String(c.wBits), layers: [], fp32Bytes: 4, quantBytes: 1, ms: 1 } as WeightView);
  layerGraph = async () =>
    ok({
      nodes: [{ id: 'Conv_94', kind: 'layer', label: 'block 17 · project 1×1', onnx: 'Conv_94', opType: 'Conv' }],
      edges: [],
    } as LayerGraphView);
  estimate = (c: { wBits: number }) =>
    new Promise<Result<AccuracyEstimate>>((resolve) => this.estimates.push({ bits: c.wBits, resolve }));
  cancelEstimate = async () => void this.cancels++;
  prepares: { bits: number; images?: number }[] = [];
  prepareEstimate = async (c: { wBits: number }, o?: { images?: number }) => (
    this.prepares.push({ bits: c.wBits, images: o?.images }),
    ok(true)
  );
  getRun = async () => ok(null);
}

describe('InstantState', () => {
  it('replaces an older estimate by a newer change, dropping the late older answer', async () => {
    const f = new Fake();
    const s = new InstantState(() => f as never);
    s.scheduleEstimate({ ...defaultConfig(), wBits: 4 }, 'wasm', 'h4');
    expect(s.estimateState).toBe('waiting');
    await sleep(ESTIMATE_DEBOUNCE_MS + 50);
    expect(f.estimates.map((e) => e.bits)).toEqual([4]);
    expect(s.estimateState).toBe('running');
    s.scheduleEstimate({ ...defaultConfig(), wBits: 6 }, 'wasm', 'h6');
    expect(f.cancels).toBe(1); // the running older estimate is cancelled at once
    await sleep(ESTIMATE_DEBOUNCE_MS + 50);
    expect(f.estimates.map((e) => e.bits)).toEqual([4, 6]);
    f.estimates[1].resolve(ok(estimateFor('h6')));
    await sleep(0);
    f.estimates[0].resolve(ok(estimateFor('h4'))); // late answer of the older change
    await sleep(0);
    expect(s.estimate?.configHash).toBe('h6');
    expect(s.estimateState).toBe('ready');
  });

  it('starts no estimate for changes that come faster than the debounce', async () => {
    const f = new Fake();
    const s = new InstantState(() => f as never);
    for (const b of [3, 4, 5]) {
      s.scheduleEstimate({ ...defaultConfig(), wBits: b }, 'wasm', `h${b}`);
      await sleep(ESTIMATE_DEBOUNCE_MS / 4);
    }
    await sleep(ESTIMATE_DEBOUNCE_MS + 50);
    expect(f.estimates.map((e) => e.bits)).toEqual([5]);
    // each change lets the worker quantize its weights while it settles
    expect(f.prepares).toEqual([3, 4, 5].map((bits) => ({ bits, images: s.estimateImages })));
    expect(f.cancels).toBe(0); // nothing was running to cancel
    await s.stopEstimate();
    expect(f.cancels).toBe(1);
  });

  it('estimates again for a new image count, and not for the same settings and count', async () => {
    const f = new Fake();
    const s = new InstantState(() => f as never);
    const cfg = { ...defaultConfig(), wBits: 4 };
    s.scheduleEstimate(cfg, 'wasm', 'h4');
    await sleep(ESTIMATE_DEBOUNCE_MS + 50);
    f.estimates[0].resolve(ok(estimateFor('h4')));
    await sleep(0);
    expect(s.estimateState).toBe('ready');
    s.scheduleEstimate(cfg, 'wasm', 'h4');
    expect(s.estimateState).toBe('ready');
    await sleep(ESTIMATE_DEBOUNCE_MS + 50);
    expect(f.estimates.length).toBe(1);
    s.estimateImages = 64;
    s.scheduleEstimate(cfg, 'wasm', 'h4');
    expect(s.estimateState).toBe('waiting');
    await sleep(ESTIMATE_DEBOUNCE_MS + 50);
    expect(f.estimates.length).toBe(2);
  });

  it('counts weight views and names layers from the graph', async () => {
    const f = new Fake();
    const s = new InstantState(() => f as never);
    await s.refreshWeights({ ...defaultConfig(), wBits: 4 }, undefined);
    expect(s.weightVersion).toBe(1);
    expect(s.weight?.key).toBe('4');
    expect(s.nameOf('Conv_94')).toBe('Conv_94');
    await s.loadGraph('mobilenet-v2', true);
    expect(s.nameOf('Conv_94')).toBe('block 17 · project 1×1 (Conv_94)');
    expect(s.shortName('Conv_94')).toBe('block 17 · project 1×1');
  });
});
