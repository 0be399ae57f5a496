/**
 * `npm run bench -- --pareto` prints and records its reference: the FP32 top-1 and the
 * top-1 of every layer at the preset's bits, so a point's drop can be read. The uniform
 * reference must be the plain run of the same config (same images, same engine), and FP32
 * the run's FP32. A small CNN on synthetic images, wasm engine.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main as benchMain } from '../../src/cli/bench.ts';
import type { ExperimentResult } from '../../src/lib/experiment/types.ts';
import { parseLink } from '../../src/lib/config/link.ts';
import { serializeModel } from '../../src/lib/onnx/model.ts';
import { smallCnn } from '../support/onnx-helpers.ts';
import { syntheticImages } from '../support/pipeline-helpers.ts';

const CLASSES = 5;
const MODEL = serializeModel(smallCnn({ seed: 5, relu6Clip: true }));
const IMAGES = syntheticImages(16, CLASSES, 7);
const WNIDS = Array.from({ length: CLASSES }, (_, i) => `n0000000${i}`);
const CLASS_INDEX = Object.fromEntries(WNIDS.map((w, i) => [String(i), [w, `class ${i}`]]));

async function bench(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    const code = await benchMain(argv);
    return {
      code,
      stdout: out.mock.calls.map((c) => String(c[0])).join(''),
      stderr: err.mock.calls.map((c) => String(c[0])).join(''),
    };
  } finally {
    err.mockRestore();
    out.mockRestore();
  }
}

interface ParetoRecord {
  fp32: { top1: number };
  pareto: {
    reference: { fp32: { top1: number }; uniform: { top1: number; sizeBits: number; url: string } };
    evaluated: { sizeBits: number; top1: number }[];
  };
}

describe('bench --pareto reference', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'qp-cli-search-'));
    writeFileSync(join(dir, 'tiny.onnx'), MODEL);
    IMAGES.forEach((im, i) => writeFileSync(join(dir, `${WNIDS[im.label]}_${i}.JPEG`), im.bytes));
    writeFileSync(join(dir, 'imagenet_class_index.json'), JSON.stringify(CLASS_INDEX));
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
});
