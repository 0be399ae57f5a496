/**
 * `npm run bench -- --deploy`: each record gets `deployed` (the integer export run on
 * onnxruntime's integer kernels, on the run's own evaluation images), the simulated-versus-
 * deployed table is printed, a config that cannot be deployed (4-bit weights) says why
 * without failing the sweep, and the deployed top-1 is what a plain onnxruntime-web session
 * (default optimizations: QDQ fused into integer kernels) gives on the model.int8.onnx that
 * `--export` writes for the same config. A small CNN (BN, ReLU6, depthwise, residual join)
 * on synthetic images, wasm engine.
 * The browser worker's "Check on integer kernels" (workers/api.ts checkDeployed) gives the
 * same numbers for the same config, reports progress, and a cancel ends it with CANCELLED.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import 'fake-indexeddb/auto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliModel } from '../../src/cli/bench.ts';
import type { DeployedField } from '../../src/cli/deploy.ts';
import { parseBenchArgs } from '../../src/cli/args.ts';
import { DiskCropStore, loadImageFolder } from '../../src/lib/data/dataset.node.ts';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import { evaluate } from '../../src/lib/experiment/evaluate.ts';
import { DEFAULT_TUNING, loadSplitCrops, resolveModelInput, withConfigModel } from '../../src/lib/experiment/inputs.ts';
import type { ExperimentResult } from '../../src/lib/experiment/types.ts';
import { parseModel, serializeModel } from '../../src/lib/onnx/model.ts';
import type { DeployProgress } from '../../src/lib/protocol/deploy.ts';
import { smallCnn } from '../support/onnx-helpers.ts';
import { inProcessQuantApi } from '../support/worker-helpers.ts';
import { captureBench as bench } from '../support/bench-capture.ts';
import { syntheticImages } from '../support/pipeline-helpers.ts';

const CLASSES = 5;
const MODEL_GRAPH = smallCnn({ seed: 5, relu6Clip: true });
const MODEL = serializeModel(MODEL_GRAPH);
const IMAGES = syntheticImages(16, CLASSES, 7);
const WNIDS = Array.from({ length: CLASSES }, (_, i) => `n0000000${i}`);
const CLASS_INDEX = Object.fromEntries(WNIDS.map((w, i) => [String(i), [w, `class ${i}`]]));

type DeployedRecordJson = ExperimentResult & { deployed: DeployedField | null };

describe('bench --deploy', () => {
  let dir: string;
  let cliRecords: DeployedRecordJson[] = [];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'qp-cli-deploy-'));
    writeFileSync(join(dir, 'tiny.onnx'), MODEL);
    IMAGES.forEach((im, i) => writeFileSync(join(dir, `${WNIDS[im.label]}_${i}.JPEG`), im.bytes));
    writeFileSync(join(dir, 'imagenet_class_index.json'), JSON.stringify(CLASS_INDEX));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('parses, and refuses --deploy with a search', () => {
    expect(parseBenchArgs(['--model', 'm', '--data', 'd', '--deploy']).deploy).toBe(true);
    expect(parseBenchArgs(['--model', 'm', '--data', 'd']).deploy).toBe(false);
    expect(() => parseBenchArgs(['--model', 'm', '--data', 'd', '--deploy', '--pareto'])).toThrow(/--deploy/);
  });

  it('adds deployed {top1, top5, agreement, firstDivergence} per record and prints the table', async () => {
    const json = join(dir, 'out.json');
    const exportDir = join(dir, 'export');
    const common = ['--model', join(dir, 'tiny.onnx'), '--data', dir, '--engine', 'wasm', '--threads', '1'];
    const r = await bench([
      ...common,
      ...['--calib', '6', '--eval', '10', '--seed', '3', '--backend', 'tensorrt,snpe', '--w-bits', '8,4'],
      ...['--deploy', '--export', exportDir, '--json', json],
    ]);
    expect(r.stderr).not.toMatch(/^error/m);
    // a config the integer kernels cannot take does not fail the sweep
    expect(r.code).toBe(0);
    const records = JSON.parse(readFileSync(json, 'utf8')) as DeployedRecordJson[];
    expect(records).toHaveLength(4);
    for (const rec of records) {
      const d = rec.deployed!;
      expect(d).not.toBeNull();
      if (rec.config.wBits === 4) {
        expect('error' in d && d.error).toMatch(/8-bit/);
        continue;
      }
      if ('error' in d) throw new Error(d.error);
      for (const v of [d.top1, d.top5, d.agreement]) expect(v).toBeGreaterThanOrEqual(0);
      for (const v of [d.top1, d.top5, d.agreement]) expect(v).toBeLessThanOrEqual(1);
      expect(d.top5).toBeGreaterThanOrEqual(d.top1);
      expect(d.integerOps).toBeGreaterThan(0);
      expect(d.divergenceImages).toBeGreaterThan(0);
      if (d.firstDivergence) {
        expect(d.firstDivergence.maxSteps).toBeGreaterThan(1);
        expect(d.firstDivergence.reasons.length).toBeGreaterThan(0);
      }
      expect(r.stdout).toContain(`${rec.config.backend} W8A8`);
    }
    expect(r.stdout).toMatch(/Simulated versus deployed/);
    expect(r.stdout).toMatch(/W4A8 .*not deployed: .*8-bit/);

    // the deployed top-1 is a plain session (fusions on) running --export's model.int8.onnx
    const engine = await createNodeWasmEngine(1);
    const dataset = await loadImageFolder(dir, join(dir, 'imagenet_class_index.json'));
    const spec = await cliModel(MODEL, parseModel(MODEL), CLASSES, 0);
    cliRecords = records;
    for (const rec of records.filter((x) => x.config.wBits === 8)) {
      const folder = readdirSync(exportDir).find((f) => f.startsWith(`${rec.config.backend}-w8a8-`))!;
      const bytes = new Uint8Array(readFileSync(join(exportDir, folder, 'model.int8.onnx')));
      // the crops the pipeline evaluated: the graph's input size applied to the model's preprocessing
      const { inputs } = resolveModelInput(
        parseModel(MODEL),
        withConfigModel(
          { engine, modelBytes: MODEL, model: spec, dataset, cropStore: new DiskCropStore() },
          rec.config,
        ),
        DEFAULT_TUNING,
      );
      const { evalCrops, evalLabels } = await loadSplitCrops(inputs, rec.config);
      const s = await engine.createSession(bytes);
      const o = await evaluate(s, evalCrops, evalLabels, inputs.model.preprocess, { batchSize: 4 });
      await s.release();
      const d = rec.deployed as Exclude<DeployedField, { error: string }>;
      expect(d.top1).toBe(o.top1Hits / o.n);
      expect(o.n).toBe(10);
    }
  }, 60_000);

  it("the worker's check gives the CLI's numbers for the same configs, with progress; cancel ends it", async () => {
    expect(cliRecords.length).toBe(4);
    const engine = await createNodeWasmEngine(1);
    const api = inProcessQuantApi(engine, 'deploy');
    const model = await api.loadModel({ kind: 'bytes', bytes: MODEL, name: 'tiny.onnx' });
    if (!model.ok) throw new Error(model.error.message);
    const files = [
      ...IMAGES.map((im, i) => new File([new Uint8Array(im.bytes)], `${WNIDS[im.label]}_${i}.JPEG`)),
      new File([JSON.stringify(CLASS_INDEX)], 'imagenet_class_index.json'),
    ];
    const data = await api.loadDataset({ kind: 'files', files });
    if (!data.ok) throw new Error(data.error.message);
    const configs = cliRecords.map((r) => ({ ...r.config, dataset: data.value.name }));
    const progress: DeployProgress[] = [];
    const r = await api.checkDeployed(configs, (p) => void progress.push(p), { divergenceImages: 8, speedRounds: 1 });
    if (!r.ok) throw new Error(r.error.message);
    expect(r.value).toHaveLength(4);
    for (const [i, c] of r.value.entries()) {
      const cli = cliRecords[i];
      expect(c.config.backend).toBe(cli.config.backend);
      expect(c.simulated.top1).toBe(cli.quant.top1);
      expect(c.simulated.top5).toBe(cli.quant.top5);
      expect(c.images).toBe(10);
      const d = cli.deployed!;
      if ('error' in d) {
        expect(c.deployed).toBeUndefined();
        expect(c.error?.message).toBe(d.error);
        continue;
      }
      expect(c.error).toBeUndefined();
      expect(c.deployed!.top1).toBe(d.top1);
      expect(c.deployed!.top5).toBe(d.top5);
      expect(c.deployed!.agreement).toBe(d.agreement);
      expect(c.deployed!.firstDivergence?.layer ?? null).toBe(d.firstDivergence?.layer ?? null);
      expect(c.deployed!.speed!.fp32MsPerImage).toBeGreaterThan(0);
      // the depthwise convolution recomputed by hand gives the kernel's byte on every output
      const a = c.deployed!.arithmetic!;
      expect(a.layer).toBe(MODEL_GRAPH.nodes.find((n) => n.opType === 'Conv' && Number(n.attrs.group) > 1)!.name);
      expect(a.outputs).toBeGreaterThan(0);
      expect(a.floatMatches).toBe(a.outputs);
      expect(a.example.total).toBe(a.example.accumulator + a.example.bias);
      expect(c.deployed!.speed!.deployedMsPerImage).toBeGreaterThan(0);
    }
    expect(progress.length).toBeGreaterThan(4);
    const dones = progress.map((p) => p.done);
    expect(dones).toEqual([...dones].sort((a, b) => a - b));
    expect(progress.at(-1)).toMatchObject({ done: 4, total: 4 });
    expect(progress.some((p) => /integer kernels/.test(p.message))).toBe(true);

    const pending = api.checkDeployed(configs.slice(0, 1), (p) => {
      if (/integer/.test(p.message)) void api.cancel();
    });
    const cancelled = await pending;
    expect(cancelled.ok ? 'finished' : cancelled.error.code).toBe('CANCELLED');
  }, 60_000);
});
