/**
 * The whole run's progress and time estimate (state/run-progress.ts) replayed on progress
 * reports recorded from real runs (tests/fixtures/progress/traces.json, written by
 * scripts/record-progress.ts: MobileNet-V2, wasm in Node, 16 calibration / 48 evaluation
 * images): the bar never goes back and ends full, AdaRound/GPTQ show one counter, and
 * after the first tenth of the run the estimate of the time left stays within a factor of
 * two of the truth (or 3 s of it) — checked every half second, as the page's one-second
 * ticker shows it between reports.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RunProgress, etaWithin, planRun, phaseOf } from '../../src/lib/state/run-progress.ts';
import type { Progress } from '../../src/lib/protocol/results.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';

interface Trace {
  config: ExperimentConfig;
  analyze?: { images: number };
  seconds: number;
  events: (Progress & { t: number })[];
}
const FIXTURE = new URL('../fixtures/progress/traces.json', import.meta.url);
const { traces } = JSON.parse(readFileSync(FIXTURE, 'utf8')) as { traces: Record<string, Trace> };

/** Replays a trace: the view after each report, and every half second between reports. */
function replay(tr: Trace) {
  const rp = new RunProgress({ config: tr.config, analyzeImages: tr.analyze?.images, available: 1000 });
  const start: Progress = { stage: 'load', done: 0, total: 1, message: 'Starting the engine' };
  const views = [{ t: 0, v: rp.update(start, 0) }];
  let last = start;
  let t = 0;
  for (const e of tr.events) {
    for (t += 0.5; t < e.t; t += 0.5) views.push({ t, v: rp.update(last, t) });
    t = e.t;
    last = e;
    views.push({ t, v: rp.update(e, t) });
  }
  return views;
}

describe('one progress bar for the whole run', () => {
  it.each(Object.keys(traces))('%s: never goes back, ends full, names each stage', (name) => {
    const views = replay(traces[name]);
    for (let i = 1; i < views.length; i++) expect(views[i].v.fraction).toBeGreaterThanOrEqual(views[i - 1].v.fraction);
    expect(views.at(-1)!.v.fraction).toBeGreaterThan(0.97);
    expect(new Set(views.map((x) => x.v.stage)).size).toBeGreaterThanOrEqual(4);
  });

  it.each(Object.keys(traces))('%s: the time left is within 2× of the truth after the first 10%%', (name) => {
    const tr = traces[name];
    const views = replay(tr);
    const total = tr.seconds;
    const checked = views.filter((x) => x.t >= 0.1 * total && x.v.etaSeconds !== undefined);
    const bad = checked.filter((x) => !etaWithin(x.v.etaSeconds!, total - x.t));
    expect(checked.length).toBeGreaterThan(10);
    expect(
      bad
        .slice(0, 5)
        .map(
          (x) =>
            `at ${x.t.toFixed(1)} s (${x.v.phase}): ${x.v.etaSeconds!.toFixed(1)} s left, truly ${(total - x.t).toFixed(1)}`,
        ),
    ).toEqual([]);
  });

  it('AdaRound and GPTQ: one counter of layers, no jump between Gram matrices and layers', () => {
    for (const name of ['adaround', 'gptq']) {
      const views = replay(traces[name]).filter((x) => x.v.phase === 'weights' && x.v.counter);
      expect(views.length).toBeGreaterThan(5);
      for (const x of views) expect(x.v.counter).toMatch(/^layer \d+ \/ \d+$/);
      const totals = new Set(views.map((x) => x.v.counter.split(' / ')[1]));
      expect(totals.size).toBe(1);
    }
  });

  it('BRECQ and QDrop: planned work that grows with the steps, the method in the stage, a counter of blocks', () => {
    const base = traces.plain.config;
    const qdrop = { ...base, wBits: 4, aBits: 4, ptq: 'qdrop' as const, ptqIters: 200 };
    expect(planRun({ config: qdrop }).weights).toBeGreaterThan(planRun({ config: base }).weights);
    expect(planRun({ config: { ...qdrop, ptqIters: 400 } }).weights).toBeGreaterThan(
      planRun({ config: qdrop }).weights,
    );
    // AdaRound with learned step sizes trains on engine gradients too: the same plan
    expect(planRun({ config: { ...qdrop, ptq: 'adaround', ptqActRanges: 'learned' } }).weights).toBe(
      planRun({ config: qdrop }).weights,
    );
    const rp = new RunProgress({ config: qdrop, available: 1000 });
    rp.update({ stage: 'fp32', done: 1, total: 10, message: 'FP32 evaluation 1/10' }, 0);
    const total = 18 * 200;
    const v = rp.update(
      {
        stage: 'quantize',
        done: 2 * 200 + 50,
        total,
        message: 'QDrop 3/18: Conv_10…Add_15, step 50/200',
        count: { done: 2, total: 18, of: 'blocks' },
      },
      10,
    );
    expect(v.phase).toBe('weights');
    expect(v.stage).toBe('Optimizing rounding (QDrop)');
    expect(v.counter).toBe('block 2 / 18');
    const later = rp.update(
      {
        stage: 'quantize',
        done: 9 * 200,
        total,
        message: 'QDrop 10/18: Conv_50…Add_55',
        count: { done: 9, total: 18, of: 'blocks' },
      },
      20,
    );
    expect(later.fraction).toBeGreaterThan(v.fraction);
  });

  it('plans the phases the config asks for, and reads the stage of each report', () => {
    const base = traces.plain.config;
    expect(planRun({ config: base }).fixes).toBe(0);
    expect(planRun({ config: { ...base, biasCorrection: true } }).fixes).toBeGreaterThan(0);
    expect(planRun({ config: base, analyzeImages: 16 }).analyze).toBeGreaterThan(0);
    expect(planRun({ config: { ...base, calib: 5000, eval: 5000 }, available: 100 }).fp32).toBe(
      planRun({ config: { ...base, calib: 100, eval: 100 } }).fp32,
    );
    expect(phaseOf({ stage: 'quantize', done: 1, total: 3, message: 'Fixes: bias correction' })).toBe('fixes');
    expect(phaseOf({ stage: 'evaluate', done: 1, total: 3, message: 'Evaluation before fixes 1/3' })).toBe('before');
    expect(phaseOf({ stage: 'evaluate', done: 1, total: 3, message: 'Quantized evaluation 1/3' })).toBe('evaluate');
    // the browser's worker saves the result after the pipeline: a last phase of its own
    expect(planRun({ config: base }).finish).toBe(0);
    expect(planRun({ config: base, saves: true }).finish).toBeGreaterThan(0);
    expect(phaseOf({ stage: 'finish', done: 0, total: 1, message: 'Saving the result' })).toBe('finish');
  });

  it('the promise: a factor of two, or 3 s near the end', () => {
    expect(etaWithin(20, 10)).toBe(true);
    expect(etaWithin(21, 10)).toBe(false);
    expect(etaWithin(4.9, 10)).toBe(false);
    expect(etaWithin(3, 0.4)).toBe(true);
  });
});
