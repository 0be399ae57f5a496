/**
 * WebGPU that stays on the GPU, in Debian's Chromium with --enable-unsafe-webgpu (SwiftShader
 * here): every graph the pipeline hands a WebGPU engine for the tiny classifier — FP32,
 * calibration, the evaluated fake-quant model, GPTQ reconstruction — has all its nodes on
 * the WebGPU provider by onnxruntime's own placement log, while the element-wise form with
 * Round still puts each Round on the CPU (so the count can fail); and the evaluated fake-quant
 * model gives the same top-1 decisions on WebGPU as on wasm, and on wasm in the page the same
 * logits as in Node. Outside the app (tests/e2e/ort-page.ts); the app's runs are app.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import type { EngineSession } from '../../src/lib/engine/types.ts';
import { evaluate } from '../../src/lib/experiment/evaluate.ts';
import { batches } from '../../src/lib/experiment/batches.ts';
import { parseModel } from '../../src/lib/onnx/model.ts';
import { agreement } from '../../src/lib/quant/metrics.ts';
import {
  GRAPH_KINDS,
  placeByKind,
  recordWebGpuGraphs,
  syntheticCrops,
  tinyClassifier,
  type RecordedGraphs,
} from '../../scripts/webgpu-graphs.ts';
import { CHROMIUM } from './helpers.ts';
import { openOrtPage, type OrtPage } from './ort-page.ts';

const crops = syntheticCrops(8);
const labels = crops.map((_, i) => i);
const spec = TORCHVISION_SPEC;

describe.skipIf(!existsSync(CHROMIUM))('WebGPU placement and results (tiny classifier, SwiftShader)', () => {
  let page: OrtPage;
  let rec: RecordedGraphs;
  beforeAll(async () => {
    rec = await recordWebGpuGraphs(tinyClassifier(), crops.slice(0, 4), spec);
    page = await openOrtPage();
  });
  afterAll(async () => page?.close());

  it('finds a WebGPU adapter', () => {
    expect(page.adapter.found, page.adapter.text).toBe(true);
  });

  it('places every node of all four kinds of graph on the WebGPU provider', async () => {
    const placed = await placeByKind(page, rec.graphs);
    for (const kind of GRAPH_KINDS) {
      expect(placed[kind].graphs, kind).toBeGreaterThan(0);
      expect({ kind, cpu: placed[kind].cpuOps, copies: placed[kind].copies }).toEqual({ kind, cpu: {}, copies: 0 });
    }
  });

  it('still sees the CPU fallback of the element-wise form with Round', async () => {
    expect(parseModel(rec.fakeQuant).nodes.some((n) => n.opType === 'Round')).toBe(false);
    const rounds = parseModel(rec.elementWise).nodes.filter((n) => n.opType === 'Round').length;
    expect(rounds).toBeGreaterThan(0);
    const p = await page.placement(rec.elementWise);
    expect(p.byProvider.CPUExecutionProvider?.Round).toBe(rounds);
    expect(p.copies).toBe(2 * rounds);
  });

  it('gives the same top-1 decisions and agreement on WebGPU as on wasm', async () => {
    const run = async (s: EngineSession) => {
      try {
        return await evaluate(s, crops, labels, spec, { batchSize: crops.length });
      } finally {
        await s.release();
      }
    };
    const fp32 = rec.graphs.fp32[0];
    const [gFp, gFq] = [
      await run(await page.session(fp32, 'webgpu')),
      await run(await page.session(rec.fakeQuant, 'webgpu')),
    ];
    const [wFp, wFq] = [
      await run(await page.session(fp32, 'wasm')),
      await run(await page.session(rec.fakeQuant, 'wasm')),
    ];
    expect([...gFp.preds]).toEqual([...wFp.preds]);
    expect([...gFq.preds]).toEqual([...wFq.preds]);
    expect(agreement(gFp.preds, gFq.preds)).toBe(agreement(wFp.preds, wFq.preds));
  });

  it('on wasm in the page, gives the logits of onnxruntime-web in Node bit for bit', async () => {
    const x = [...batches(crops, spec, crops.length)][0].tensor;
    const s = await page.session(rec.fakeQuant, 'wasm');
    const inPage = (await s.run({ [s.inputNames[0]]: x }))[s.outputNames[0]].data;
    await s.release();
    const node = await (await createNodeWasmEngine()).createSession(rec.fakeQuant);
    const inNode = (await node.run({ [node.inputNames[0]]: x }))[node.outputNames[0]].data;
    await node.release();
    expect(Buffer.from(inPage.buffer).equals(Buffer.from(inNode.buffer))).toBe(true);
  });
});
