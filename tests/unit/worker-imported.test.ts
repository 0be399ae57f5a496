/**
 * The quantization worker with quantized ONNX files (workers/api.ts), up to where an engine
 * would run: a QDQ file is recognised on load with its per-layer quantization, the instant
 * views see its float skeleton, settings runs and estimates refuse it with a sentence, and
 * a comparison with a parent that does not match, or a file the reader does not fully
 * understand, fails with a message naming the cause — while the worker stays usable.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createQuantApi } from '../../workers/api.ts';
import { defaultConfig } from '../../src/lib/config/resolve.ts';
import { parseModel, serializeModel } from '../../src/lib/onnx/model.ts';
import { tinyQdqPair } from '../support/tiny-qdq.ts';
import { qdqToQOperator } from '../support/imported-fixtures.ts';

const OTHER = new Uint8Array(readFileSync(join(import.meta.dirname, '../fixtures/bad-inputs/valid-tiny.onnx')));

function worker() {
  const storage = { putModel: async () => undefined, getModel: async () => undefined };
  return createQuantApi({ storage: storage as never });
}

async function load(api: ReturnType<typeof worker>, bytes: Uint8Array, name: string) {
  const r = await api.loadModel({ kind: 'bytes', bytes, name });
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

describe('worker: quantized models', () => {
  const { parent, qdq } = tinyQdqPair();

  it('recognises a QDQ file on load and reads each layer’s quantization', async () => {
    const api = worker();
    const info = await load(api, qdq, 'tiny-int8.onnx');
    expect(info.quantized?.format).toBe('qdq');
    expect(info.quantized?.unsupported).toEqual([]);
    const layers = info.quantized!.layers;
    expect(layers.map((l) => [l.opType, l.weight?.bits, l.weight?.granularity, l.weight?.signed])).toEqual([
      ['Conv', 8, 'per-channel', true],
      ['Gemm', 8, 'per-channel', true],
    ]);
    // onnxruntime's uint8 activations, at the ranges the file was made with
    expect(layers[0].input?.storage).toBe('uint8');
    expect(layers[0].input!.range.min).toBeCloseTo(-2.2, 1);
    expect(layers[0].input!.range.max).toBeCloseTo(2.7, 1);
    // the QOperator form of the same file reads the same
    const qop = await load(worker(), serializeModel(qdqToQOperator(parseModel(qdq))), 'tiny-qop.onnx');
    expect(qop.quantized?.format).toBe('qoperator');
    expect(qop.quantized?.layers.map((l) => [l.weight?.bits, l.weight?.granularity])).toEqual(
      layers.map((l) => [l.weight?.bits, l.weight?.granularity]),
    );
    // a float model is not marked
    expect((await load(worker(), parent, 'tiny.onnx')).quantized).toBeUndefined();
  });

  it('shows the float skeleton in the layer graph and refuses settings runs and estimates', async () => {
    const api = worker();
    const info = await load(api, qdq, 'tiny-int8.onnx');
    const g = await api.layerGraph(true);
    if (!g.ok) throw new Error(g.error.message);
    const ops = g.value.nodes.filter((n) => n.kind === 'layer').map((n) => n.onnx);
    expect(ops).toEqual(info.quantized!.layers.map((l) => l.node));
    const cfg = { ...defaultConfig(), model: info.id };
    const run = await api.run([cfg], 'wasm');
    expect(run.ok).toBe(false);
    if (!run.ok) expect(run.error.message).toMatch(/already quantized.*Evaluate as it is/);
    const est = await api.estimate(cfg, 'wasm');
    expect(est.ok || est.error.message).toMatch(/already quantized.*Open its float parent/);
  });

  it('asks for the right model for each step', async () => {
    const api = worker();
    // no quantized file yet
    const float = await load(api, parent, 'tiny.onnx');
    const cmp = await api.compareWithParent({ ...defaultConfig(), model: float.id }, 'wasm');
    expect(cmp.ok || cmp.error.message).toMatch(/No quantized model was opened/);
    const ev = await api.evaluateImported({ ...defaultConfig(), model: float.id }, 'wasm');
    expect(ev.ok || ev.error.message).toMatch(/not a quantized one/);
    // the quantized file loaded: comparing needs the parent opened after it
    const q = await load(api, qdq, 'tiny-int8.onnx');
    const cmp2 = await api.compareWithParent({ ...defaultConfig(), model: q.id }, 'wasm');
    expect(cmp2.ok || cmp2.error.message).toMatch(/loaded model is the quantized one/);
    // a matching parent gets as far as the images
    await load(api, parent, 'tiny.onnx');
    const cmp3 = await api.compareWithParent({ ...defaultConfig(), model: float.id }, 'wasm');
    expect(cmp3.ok || cmp3.error.message).toMatch(/No images are loaded/);
  });

  it('names the cause when the float model is not the parent, and keeps working', async () => {
    const api = worker();
    await load(api, qdq, 'tiny-int8.onnx');
    const other = await load(api, OTHER, 'other.onnx');
    const r = await api.compareWithParent({ ...defaultConfig(), model: other.id }, 'wasm');
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('MODEL_UNSUPPORTED');
      expect(r.error.userError).toBe(true);
      expect(r.error.message).toMatch(/not its parent.*Open the float model the quantized one was made from/);
    }
    // the right parent still pairs (the file was kept)
    const p = await load(api, parent, 'tiny.onnx');
    const ok = await api.compareWithParent({ ...defaultConfig(), model: p.id }, 'wasm');
    expect(ok.ok || ok.error.message).toMatch(/No images are loaded/);
  });

  it('loads a file with ops it does not understand, lists them, and refuses the comparison with the reason', async () => {
    const g = parseModel(qdq);
    const dq = g.nodes.find((n) => n.opType === 'DequantizeLinear' && g.initializers.has(n.inputs[0]))!;
    dq.attrs.block_size = 4;
    const api = worker();
    const info = await load(api, serializeModel(g), 'blocked.onnx');
    expect(info.quantized?.unsupported.join(' ')).toMatch(/blocked quantization/);
    await load(api, parent, 'tiny.onnx');
    const r = await api.compareWithParent({ ...defaultConfig(), model: 'x' }, 'wasm');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(/cannot be compared with a float parent.*blocked quantization/);
  });
});
