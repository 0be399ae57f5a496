// Every lesson is well-formed, its link opens the config its claim runs, and claims are checked correctly.
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LESSONS } from '../../src/lessons/index.ts';

/** every lesson: the app's and those only the command line checks */
import {
  compare,
  driftLateOverEarly,
  evaluateClaim,
  metricValue,
  planRuns,
  runConfig,
} from '../../src/lessons/claims.ts';
import type { Lesson } from '../../src/lessons/types.ts';
import { METRICS } from '../../src/lessons/types.ts';
import { parse, serialize } from '../../src/lib/config/url.ts';
import type { Accuracy, ExperimentResult } from '../../src/lib/experiment/types.ts';
import type { LayerAnalysis } from '../../src/lib/analysis/types.ts';

const words = (s: string) => s.split(/\s+/).filter(Boolean).length;
const ANALYSIS_METRICS = new Set(['weightOnly', 'activationOnly', 'vanishedFirstDepthwise', 'driftLateOverEarly']);

describe('lessons are well-formed', () => {
  it('the app lists the lessons on the integer-kernel check, which it now runs itself', () => {
    expect(LESSONS.map((l) => l.id)).toEqual(expect.arrayContaining(['deployment-gap', 'integer-arithmetic']));
  });

  it('there are at least 10, with unique ids matching their files', () => {
    expect(LESSONS.length).toBeGreaterThanOrEqual(10);
    const ids = LESSONS.map((l) => l.id);
    expect(new Set(ids).size).toBe(ids.length);
    const files = readdirSync(resolve(import.meta.dirname, '../../src/lessons')).filter(
      (f) => !['types.ts', 'claims.ts', 'index.ts', 'run-claims.ts', 'deploy-claims.ts'].includes(f),
    );
    expect(files.sort()).toEqual(ids.map((id) => `${id}.ts`).sort());
  });

  it.each(LESSONS.map((l) => [l.id, l] as [string, Lesson]))(
    '%s has complete text, why in at most 200 words',
    (_id, l) => {
      expect(l.id).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
      for (const s of [l.title, l.question, l.notice, l.why, l.claim.text]) expect(s.trim().length).toBeGreaterThan(10);
      expect(l.question.trim().endsWith('?')).toBe(true);
      expect(l.steps.length).toBeGreaterThanOrEqual(2);
      expect(words(l.why)).toBeLessThanOrEqual(200);
      expect(words(l.why)).toBeGreaterThanOrEqual(40);
    },
  );

  it.each(LESSONS.map((l) => [l.id, l] as [string, Lesson]))(
    '%s: the link parses without notices, hides something, and is the config of its linkRun',
    (_id, l) => {
      const p = parse(l.link);
      expect(p.notices).toEqual([]);
      expect(p.hidden.size).toBeGreaterThan(0);
      const run = l.claim.runs[l.linkRun];
      expect(run, `linkRun "${l.linkRun}" is not a claim run`).toBeDefined();
      expect(p.config).toEqual(runConfig(run));
      // links are written in the codec's canonical form, so copying the app's link gives the same text
      expect(serialize(p.config, p.hidden)).toBe(l.link);
    },
  );

  it.each(LESSONS.map((l) => [l.id, l] as [string, Lesson]))(
    '%s: checks read defined runs, known metrics, with analysis where needed',
    (_id, l) => {
      expect(l.claim.checks.length).toBeGreaterThan(0);
      for (const c of l.claim.checks) {
        for (const q of [c.left, c.right]) {
          if (typeof q === 'number') continue;
          expect(Object.keys(l.claim.runs)).toContain(q.run);
          expect(METRICS).toContain(q.metric);
          if (ANALYSIS_METRICS.has(q.metric)) expect(l.claim.runs[q.run].analyze).toBe(true);
        }
      }
      for (const r of Object.values(l.claim.runs)) expect(() => runConfig(r)).not.toThrow();
    },
  );

  it('claims are about the sample split: 128 calibration / 872 evaluation / seed 0 unless the lesson varies it', () => {
    // the low-bit frontier calibrates on 32 images so that its block reconstructions stay short
    // (docs/reconstruction-low-bit.md); its evaluation split is still 872 images
    const calibOf = (id: string) => (id === 'low-bit-frontier' ? 32 : 128);
    for (const l of LESSONS) {
      for (const r of Object.values(l.claim.runs)) {
        const c = runConfig(r);
        expect(c.eval).toBe(872);
        expect(c.model).toBe('mobilenet-v2');
        if (l.id !== 'calibration-size') expect([c.calib, c.seed]).toEqual([calibOf(l.id), 0]);
      }
    }
  });
});

describe('claim planning and checking', () => {
  const acc = (top1: number): Accuracy => ({ top1, top5: top1, top1Ci: [top1, top1], top5Ci: [top1, top1] });
  const result = (over: Partial<ExperimentResult>): ExperimentResult => ({
    config: runConfig({ config: { backend: 'tensorrt' } }),
    configHash: 'x',
    fp32: acc(0.8),
    quant: acc(0.7),
    agreement: 0.9,
    images: { calib: 128, eval: 872, skipped: 0 },
    seconds: 1,
    engine: 'test',
    quantPoints: { activations: 1, weights: 1 },
    unquantizedOps: [],
    createdAt: '',
    ...over,
  });

  it('shares runs between lessons and keeps analysis when any lesson asks for it', () => {
    const { runs, keys } = planRuns(LESSONS);
    const total = LESSONS.reduce((n, l) => n + Object.keys(l.claim.runs).length, 0);
    expect(runs.length).toBeLessThan(total);
    const w4 = keys.get('low-bit-collapse')!.get('w4a8')!;
    expect(keys.get('bit-width')!.get('w4')).toBe(w4);
    expect(runs.find((r) => r.key === w4)!.analyze).toBe(true);
    expect(planRuns(LESSONS, 100).runs.every((r) => r.config.eval === 100)).toBe(true);
  });

  it('reads metrics in percent and points', () => {
    const r = result({ beforeFixes: acc(0.2) });
    expect(metricValue(r, 'drop')).toBeCloseTo(10, 9);
    expect(metricValue(r, 'agreement')).toBeCloseTo(90, 9);
    expect(metricValue(r, 'fixGain')).toBeCloseTo(50, 9);
    expect(() => metricValue(result({}), 'weightOnly')).toThrow(/analyze: true/);
  });

  it('drift ratio compares the last third of layers with the first third', () => {
    const layer = (index: number, shift: number) =>
      ({ index, drift: { meanAbsShift: shift, stdRatio: 1, channels: 1 } }) as LayerAnalysis;
    expect(
      driftLateOverEarly([layer(0, 1), layer(1, 1), layer(2, 2), layer(3, 2), layer(4, 3), layer(5, 5)]),
    ).toBeCloseTo(4, 9);
    expect(driftLateOverEarly([layer(0, 1)])).toBeNaN();
  });

  it('a claim holds only when every check holds, with margins', () => {
    const lesson = LESSONS.find((l) => l.id === 'bias-correction')!;
    const good = evaluateClaim(lesson, () => result({ quant: acc(0.65), beforeFixes: acc(0.13) }));
    expect(good.holds).toBe(true);
    expect(good.measured['corrected.fixGain']).toBe(52);
    expect(evaluateClaim(lesson, () => result({ quant: acc(0.5), beforeFixes: acc(0.13) })).holds).toBe(false);
    const pc = LESSONS.find((l) => l.id === 'per-channel')!;
    const byRun = (t: Record<string, number>) => (run: string) => result({ quant: acc(t[run]) });
    // fp32 is 0.8 in result(): drops are 0.8 − top-1
    const measured = { perTensor6: 0.11, perChannel6: 0.72, perTensor8: 0.795, perChannel8: 0.796 };
    expect(evaluateClaim(pc, byRun(measured)).holds).toBe(true);
    expect(evaluateClaim(pc, byRun({ ...measured, perTensor6: 0.4 })).holds).toBe(false); // only 32 points apart
    expect(evaluateClaim(pc, byRun({ ...measured, perTensor8: 0.77 })).holds).toBe(false); // 8-bit drops 2.6 apart
    expect(compare(Number.NaN, '<', 1)).toBe(false);
  });
});
