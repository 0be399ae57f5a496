/**
 * `npm run bench -- --pareto` prints and records its reference: the FP32 top-1 and the
 * top-1 of every layer at the preset's bits, so a point's drop can be read. The uniform
 * reference must be the plain run of the same config (same images, same engine), and FP32
 * the run's FP32. The browser worker's search (workers/api.ts searchPrecision) gives the
 * CLI's --max-drop numbers for the same config, counts its progress in evaluations, and a
 * cancel ends it with CANCELLED. A small CNN on synthetic images, wasm engine.
 */
import 'fake-indexeddb/auto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExperimentResult } from '../../src/lib/experiment/types.ts';
import { parseLink } from '../../src/lib/config/link.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import type { SearchProgress } from '../../src/lib/protocol/search.ts';
import { inProcessQuantApi } from '../support/worker-helpers.ts';
import { serializeModel } from '../../src/lib/onnx/model.ts';
import { smallCnn } from '../support/onnx-helpers.ts';
import { benchFolder, captureBench as bench } from '../support/bench-capture.ts';

const MODEL = serializeModel(smallCnn({ seed: 5, relu6Clip: true }));

interface DropRecord {
  config: ExperimentConfig;
  fp32: { top1: number };
  maxDrop: {
    met: boolean;
    kept: string[];
    top1: number;
    sizeBits: number;
    ranking: { layer: string }[];
    evaluations: number;
  };
}

interface ParetoRecord {
  fp32: { top1: number };
  pareto: {
    reference: { fp32: { top1: number }; uniform: { top1: number; sizeBits: number; url: string } };
    evaluated: { sizeBits: number; top1: number; front: boolean }[];
  };
}

describe('bench --pareto reference', () => {
  let dir: string;
  beforeAll(() => {
    dir = benchFolder('qp-cli-search-', MODEL, 16, 5, 7);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints FP32 and the uniform preset top-1, and records them; the uniform one is the plain run', async () => {
    const common = ['--model', join(dir, 'tiny.onnx'), '--data', dir, '--engine', 'wasm', '--threads', '1'];
    const config = ['--calib', '6', '--eval', '10', '--seed', '3', '--backend', 'academic', '--w-bits', '3'];
    const plainJson = join(dir, 'plain.json');
    const plain = await bench([...common, ...config, '--json', plainJson]);
    expect(plain.code).toBe(0);
    const [run] = JSON.parse(readFileSync(plainJson, 'utf8')) as ExperimentResult[];

    const json = join(dir, 'pareto.json');
    const r = await bench([
      ...common,
      ...config,
      ...['--pareto', '--rank-images', '6', '--pareto-points', '3', '--json', json],
    ]);
    expect(r.stderr).not.toMatch(/^error/m);
    expect(r.code).toBe(0);
    const [rec] = JSON.parse(readFileSync(json, 'utf8')) as ParetoRecord[];
    const ref = rec.pareto.reference;
    expect(ref.fp32.top1).toBe(run.fp32.top1);
    expect(rec.fp32.top1).toBe(run.fp32.top1);
    // every layer at the preset's bits: the same config as the plain run, on the same images
    expect(ref.uniform.top1).toBe(run.quant.top1);
    // its link opens that config: the preset's bits, no per-layer bits
    const linked = parseLink(ref.uniform.url.slice(1)).config;
    expect(linked.wBits).toBe(3);
    expect(linked.layerBits).toEqual(run.config.layerBits);
    expect(ref.uniform.sizeBits).toBeGreaterThan(0);
    const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
    const drop = (100 * (run.fp32.top1 - run.quant.top1)).toFixed(2);
    expect(r.stdout).toContain(
      `reference: FP32 top-1 ${pct(run.fp32.top1)}; every layer at the preset's bits: top-1 ${pct(run.quant.top1)} (drop ${drop} points)`,
    );
  }, 240_000);

  it("the worker's search and front give the CLI's numbers for the same config, with progress; cancel ends it", async () => {
    const common = ['--model', join(dir, 'tiny.onnx'), '--data', dir, '--engine', 'wasm', '--threads', '1'];
    const config = ['--calib', '6', '--eval', '10', '--seed', '3', '--backend', 'academic', '--w-bits', '3'];
    const json = join(dir, 'drop.json');
    const search = ['--max-drop', '0', '--no-prune', '--pareto', '--pareto-points', '3', '--rank-images', '6'];
    const r = await bench([...common, ...config, ...search, '--json', json]);
    expect(r.code).toBe(0);
    const [rec] = JSON.parse(readFileSync(json, 'utf8')) as (DropRecord & ParetoRecord)[];

    const api = inProcessQuantApi(await createNodeWasmEngine(1), 'search');
    const model = await api.loadModel({ kind: 'bytes', bytes: MODEL, name: 'tiny.onnx' });
    if (!model.ok) throw new Error(model.error.message);
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.JPEG') || f.endsWith('.json'))
      .filter((f) => f !== 'drop.json' && f !== 'plain.json' && f !== 'pareto.json')
      .map((f) => new File([readFileSync(join(dir, f))], f));
    const data = await api.loadDataset({ kind: 'files', files });
    if (!data.ok) throw new Error(data.error.message);
    const base = { ...rec.config, model: model.value.id, dataset: data.value.name };
    const progress: SearchProgress[] = [];
    const request = { maxDrop: 0, rankImages: 6, paretoBits: [2, 3, 4, 5, 6, 7, 8], paretoPoints: 3 };
    const o = await api.searchPrecision(base, 'wasm', request, (p) => void progress.push(p));
    if (!o.ok) throw new Error(o.error.message);
    const c = o.value.control;
    expect(o.value.fp32.top1).toBe(rec.fp32.top1);
    expect(c.kept).toEqual(rec.maxDrop.kept);
    expect(c.top1).toBe(rec.maxDrop.top1);
    expect(c.sizeBits).toBe(rec.maxDrop.sizeBits);
    expect(c.ranking.map((l) => l.layer)).toEqual(rec.maxDrop.ranking.map((l) => l.layer));
    expect(c.met).toBe(rec.maxDrop.met);
    expect(c.evaluations).toBe(rec.maxDrop.evaluations);
    // the front: the same points, the same reference
    const f = o.value.front!;
    expect(f.uniform).toEqual({
      top1: rec.pareto.reference.uniform.top1,
      sizeBits: rec.pareto.reference.uniform.sizeBits,
    });
    expect(f.points.map((p) => [p.sizeBits, p.top1, p.front])).toEqual(
      rec.pareto.evaluated.map((p) => [p.sizeBits, p.top1, p.front]),
    );
    expect(o.value.evaluations).toBe(rec.maxDrop.evaluations + f.evaluations);
    expect(o.value.evaluations).toBeGreaterThan(10);
    // progress counts evaluations up to the last one
    const dones = progress.map((p) => p.done);
    expect(dones).toEqual([...dones].sort((a, b) => a - b));
    expect(progress.at(-1)!.done).toBe(o.value.evaluations);
    for (const p of progress) expect(p.done).toBeLessThanOrEqual(p.total);

    // the budget checked on the first 5 evaluation images: the searched configs say so
    const fewer = await api.searchPrecision(base, 'wasm', { maxDrop: 0, rankImages: 4, checkImages: 5 });
    if (!fewer.ok) throw new Error(fewer.error.message);
    expect(fewer.value.fp32.images).toBe(5);
    expect(fewer.value.rankImages).toBe(4);
    expect(fewer.value.base.eval).toBe(5);
    expect(fewer.value.control.config.eval).toBe(5);

    const cancelled = await api.searchPrecision(base, 'wasm', request, (p) => {
      if (p.done >= 3) void api.cancel();
    });
    expect(cancelled.ok ? 'finished' : cancelled.error.code).toBe('CANCELLED');
  }, 240_000);
});
