/**
 * `--export DIR` of the bench CLI: the flag parses, each config lands in its own readable
 * sub-folder only once the run has finished, a failed run leaves nothing behind, and a
 * refused QDQ model still leaves its range files with the reason printed.
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../../src/cli/args.ts';
import { ExportWriter, exportSummary } from '../../src/cli/export.ts';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { simulate } from '../support/export-helpers.ts';

describe('--export', () => {
  it('parses into exportDir', () => {
    expect(parseBenchArgs(['--model', 'm', '--data', 'd', '--export', 'out']).exportDir).toBe('out');
    expect(parseBenchArgs(['--model', 'm', '--data', 'd']).exportDir).toBeUndefined();
  });

  it('writes nothing into DIR until commit, then one folder per config; the exported model reproduces the simulation', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'qp-export-')), 'out');
    const w = new ExportWriter(dir, await createNodeWasmEngine(2));
    const sim = await simulate(resolveConfig({ backend: 'tensorrt' }));
    // the simulation's predictions on the crops, as the pipeline would report them
    const { evaluate } = await import('../../src/lib/experiment/evaluate.ts');
    const { serializeModel } = await import('../../src/lib/onnx/model.ts');
    const s = await (await createNodeWasmEngine(2)).createSession(serializeModel(sim.evaluated));
    sim.evaluation.preds = (
      await evaluate(s, sim.evaluation.crops, sim.evaluation.labels, sim.evaluation.spec, { batchSize: 4 })
    ).preds;
    await s.release();
    await w.add(sim);
    expect(readdirSync(dir).every((f) => f.startsWith('.export-partial-'))).toBe(true);
    await w.commit();
    const [folder] = readdirSync(dir);
    expect(readdirSync(dir)).toEqual([folder]);
    expect(folder).toMatch(/^tensorrt-w8a8-[0-9a-f]{8}$/);
    expect(readdirSync(join(dir, folder)).sort()).toEqual([
      'README.txt',
      'model.int8.onnx',
      'model.qdq.onnx',
      'ranges.json',
      'tensorrt.json',
    ]);
    expect(w.checks[0].agreement).toBe(1);
    expect(w.checks[0].deployedTop1).toBe(w.checks[0].simulatedTop1);
    expect(exportSummary(dir, w.checks)).toMatch(/agreement with the simulation 100\.00%/);
  });

  it('abort removes the partial export and the folder it created', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'qp-export-')), 'out');
    const w = new ExportWriter(dir, await createNodeWasmEngine(2));
    await w.add(await simulate(resolveConfig({ backend: 'snpe' })));
    expect(existsSync(dir)).toBe(true);
    await w.abort();
    expect(existsSync(dir)).toBe(false);
  });

  it('a 3-bit run keeps ranges.json and says why there is no model', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'qp-export-')), 'out');
    const w = new ExportWriter(dir, await createNodeWasmEngine(2));
    await w.add(await simulate(resolveConfig({ backend: 'academic', wBits: 3, firstLast8bit: false })));
    await w.commit();
    const [folder] = readdirSync(dir);
    expect(readdirSync(join(dir, folder)).sort()).toEqual(['README.txt', 'ranges.json']);
    expect(w.checks[0].qdqError?.code).toBe('EXPORT_UNSUPPORTED');
    expect(exportSummary(dir, w.checks)).toMatch(/ranges only \(model\.qdq\.onnx not written: .*at 3 bits/);
  });

  it('4-bit activations after a ReLU6 Clip: the check loads the file at the level it names and agrees', async () => {
    // onnxruntime 1.30 refuses this file at its default level (export/qdq.ts CLIP_INT4_NOTE):
    // the check used to fail with ENGINE_FAILED
    const dir = join(mkdtempSync(join(tmpdir(), 'qp-export-')), 'out');
    const engine = await createNodeWasmEngine(2);
    const w = new ExportWriter(dir, engine);
    const cfg = resolveConfig({ backend: 'academic', wBits: 4, aBits: 4, firstLast8bit: false });
    const sim = simulate(cfg, { relu6Clip: true });
    const { evaluate } = await import('../../src/lib/experiment/evaluate.ts');
    const { serializeModel } = await import('../../src/lib/onnx/model.ts');
    const s = await engine.createSession(serializeModel(sim.evaluated));
    sim.evaluation.preds = (
      await evaluate(s, sim.evaluation.crops, sim.evaluation.labels, sim.evaluation.spec, { batchSize: 4 })
    ).preds;
    await s.release();
    await w.add(sim);
    await w.abort();
    expect(w.checks[0].qdqError).toBeUndefined();
    expect(w.checks[0].asWritten?.agreement).toBe(1);
    expect(w.checks[0].deployedTop1).toBeDefined();
  });
});
