/**
 * Graph coverage: small classifiers built with the graph IR that use every op the issue
 * lists (Conv grouped/depthwise, Gemm, MatMul, BatchNormalization, Relu, Clip,
 * HardSigmoid, HardSwish, Sigmoid·Mul (SiLU), Add, Concat, MaxPool, AveragePool,
 * GlobalAveragePool, Flatten, Reshape, Transpose, Dropout, Softmax, Identity) go through
 * `runPipeline` on an in-memory set of synthetic JPEGs (input 32×32: the pipeline
 * adapts preprocessing to the declared size). Also: an op the quantizer does not know
 * (Softsign) stays in float and is listed, and an export-style variant with an NHWC
 * input (Transpose inside), a MatMul+Add classifier, a trailing Softmax and a fixed
 * batch of 1 gives the same FP32 scores as its NCHW twin.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import type { Engine } from '../../src/lib/engine/types.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { runPipeline } from '../../src/lib/pipeline/run.ts';
import type { ExperimentResult, RunInputs } from '../../src/lib/experiment/types.ts';
import {
  makeGraph,
  makeNode,
  makeTensor,
  makeValueInfo,
  type Graph,
  type Node,
  type TensorData,
} from '../../src/lib/onnx/ir.ts';
import { serializeModel } from '../../src/lib/onnx/model.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import { sqnrDb } from '../../src/lib/quant/metrics.ts';
import { concat, memoryDataset, spyEngine, syntheticImages, type SessionRecord } from '../support/pipeline-helpers.ts';
import { mulberry32 as seeded } from '../../src/lib/util/random.ts';

const CLASSES = 10;
const CALIB = 8;
const EVAL = 16;

/** Initializers with He-uniform weights (fan-in from all dims but the first, or `fanIn`). */
function weights(seed: number) {
  const rand = seeded(seed);
  const inits: TensorData[] = [];
  const w = (name: string, dims: number[], fanIn = dims.slice(1).reduce((a, b) => a * b, 1)) => {
    const bound = Math.sqrt(6 / fanIn);
    const n = dims.reduce((a, b) => a * b, 1);
    inits.push(
      makeTensor(
        name,
        dims,
        Float32Array.from({ length: n }, () => (2 * rand() - 1) * bound),
      ),
    );
    return name;
  };
  const vec = (name: string, n: number, lo: number, hi: number) => {
    inits.push(
      makeTensor(
        name,
        [n],
        Float32Array.from({ length: n }, () => lo + (hi - lo) * rand()),
      ),
    );
    return name;
  };
  const konst = (name: string, dims: number[], data: number[] | bigint[], dtype?: 'int64') => {
    inits.push(makeTensor(name, dims, data, dtype));
    return name;
  };
  return { inits, w, vec, konst };
}

const N = (op: string, ins: string[], out: string, attrs: Record<string, number | number[]> = {}) =>
  makeNode(op, ins, [out], attrs, { name: out });

/**
 * Every listed op in one NCHW classifier, [N,3,32,32] → Softmax [N,10]. `unknownOp`
 * inserts that op (e.g. Softsign) before the global pooling.
 */
function allOpsGraph(unknownOp?: string): Graph {
  const { inits, w, vec, konst } = weights(11);
  konst('zero', [], [0]);
  konst('six', [], [6]);
  konst('flat_shape', [2], [-1n, 16n], 'int64');
  const nodes: Node[] = [
    N('Conv', ['x', w('c1.w', [8, 3, 3, 3])], 'c1', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
    N(
      'BatchNormalization',
      ['c1', vec('bn.g', 8, 0.8, 1.2), vec('bn.b', 8, -0.1, 0.1), vec('bn.m', 8, -0.1, 0.1), vec('bn.v', 8, 0.5, 1.5)],
      'bn1',
    ),
    N('Relu', ['bn1'], 'r1'),
    N('Conv', ['r1', w('c2.w', [8, 4, 3, 3]), vec('c2.b', 8, -0.1, 0.1)], 'c2', {
      group: 2,
      kernel_shape: [3, 3],
      pads: [1, 1, 1, 1],
    }), // grouped
    N('Clip', ['c2', 'zero', 'six'], 'relu6'),
    N('Conv', ['relu6', w('c3.w', [8, 1, 3, 3])], 'c3', { group: 8, kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), // depthwise
    N('HardSigmoid', ['c3'], 'hsig', { alpha: 1 / 6, beta: 0.5 }),
    N('Mul', ['c3', 'hsig'], 'hswish_manual'),
    N('HardSwish', ['hswish_manual'], 'hswish'),
    N('Sigmoid', ['hswish'], 'sig'),
    N('Mul', ['hswish', 'sig'], 'silu'),
    N('Add', ['silu', 'relu6'], 'res'),
    N('MaxPool', ['res'], 'mp', { kernel_shape: [2, 2], strides: [2, 2] }),
    N('AveragePool', ['res'], 'ap', { kernel_shape: [2, 2], strides: [2, 2] }),
    N('Concat', ['mp', 'ap'], 'cat', { axis: 1 }),
    N('Transpose', ['cat'], 'tr', { perm: [0, 1, 3, 2] }),
    N('Dropout', ['tr'], 'drop'),
    N('Identity', ['drop'], 'ident'),
    ...(unknownOp ? [N(unknownOp, ['ident'], 'unknown')] : []),
    N('GlobalAveragePool', [unknownOp ? 'unknown' : 'ident'], 'gap'),
    N('Flatten', ['gap'], 'flat', { axis: 1 }),
    N('Reshape', ['flat', 'flat_shape'], 'feat'),
    N('MatMul', ['feat', w('mm.w', [16, 12], 16)], 'hidden'),
    N('Relu', ['hidden'], 'hidden_relu'),
    N('Gemm', ['hidden_relu', w('fc.w', [CLASSES, 12]), vec('fc.b', CLASSES, -0.1, 0.1)], 'logits', { transB: 1 }),
    N('Softmax', ['logits'], 'probs', { axis: 1 }),
  ];
  return makeGraph({
    inputs: [makeValueInfo('x', ['N', 3, 32, 32])],
    outputs: [makeValueInfo('probs', ['N', CLASSES])],
    nodes,
    initializers: inits,
    opset: 14, // HardSwish
    name: unknownOp ? `all-ops+${unknownOp}` : 'all-ops',
  });
}

/**
 * A tf2onnx/Keras-style export: NHWC image [1,32,32,3] (fixed batch 1) → Transpose to NCHW →
 * Conv → Relu → GlobalAveragePool → Reshape → MatMul + Add(bias) → Softmax. `nchw` gives
 * its twin with the same weights and an NCHW input [N,3,32,32] (no Transpose).
 */
function exportStyleGraph(nchw: boolean): Graph {
  const { inits, w, vec, konst } = weights(23);
  konst('shape', [2], [0n, -1n], 'int64');
  const first = nchw ? 'image' : 'image_nchw';
  const nodes: Node[] = [
    ...(nchw ? [] : [N('Transpose', ['image'], 'image_nchw', { perm: [0, 3, 1, 2] })]),
    N('Conv', [first, w('conv.w', [16, 3, 3, 3]), vec('conv.b', 16, -0.1, 0.1)], 'conv', {
      kernel_shape: [3, 3],
      strides: [2, 2],
      pads: [1, 1, 1, 1],
    }),
    N('Relu', ['conv'], 'relu'),
    N('GlobalAveragePool', ['relu'], 'gap'),
    N('Reshape', ['gap', 'shape'], 'feat'),
    N('MatMul', ['feat', w('dense.w', [16, CLASSES], 16)], 'dense'),
    N('Add', ['dense', vec('dense.b', CLASSES, -0.1, 0.1)], 'logits'),
    N('Softmax', ['logits'], 'probs', { axis: -1 }),
  ];
  return makeGraph({
    inputs: [makeValueInfo('image', nchw ? ['N', 3, 32, 32] : [1, 32, 32, 3])],
    outputs: [makeValueInfo('probs', nchw ? ['N', CLASSES] : [1, CLASSES])],
    nodes,
    initializers: inits,
    opset: 13,
    name: nchw ? 'export-nchw' : 'export-nhwc',
  });
}

const fqSessions = (s: SessionRecord[]) => s.filter((r) => r.fakeQuant());
const fp32Session = (s: SessionRecord[]) => s.find((r) => !r.fakeQuant() && r.graph().outputs.length === 1)!;
const opTypes = (g: Graph) => new Set(g.nodes.map((n) => n.opType));

const LISTED_OPS = [
  'Conv',
  'Gemm',
  'MatMul',
  'BatchNormalization',
  'Relu',
  'Clip',
  'HardSigmoid',
  'HardSwish',
  'Sigmoid',
  'Mul',
  'Add',
  'Concat',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'Flatten',
  'Reshape',
  'Transpose',
  'Dropout',
  'Softmax',
  'Identity',
];

describe('graph coverage: every listed op through the pipeline', () => {
  let engine: Engine;
  const dataset = memoryDataset(syntheticImages(CALIB + EVAL, CLASSES), CLASSES, 'coverage');
  const model = { id: 'test:coverage', label: 'coverage', preprocess: TORCHVISION_SPEC, classes: CLASSES };

  async function run(
    g: Graph,
    sweep: Partial<ExperimentConfig>[],
  ): Promise<{ results: ExperimentResult[]; sessions: SessionRecord[] }> {
    const spy = spyEngine(engine, 'probs');
    const inputs: RunInputs = { engine: spy.engine, modelBytes: serializeModel(g), model, dataset };
    const configs = sweep.map((s) =>
      resolveConfig({ ...s, model: model.id, dataset: dataset.name, calib: CALIB, eval: EVAL, seed: 3 }),
    );
    return { results: await runPipeline(configs, inputs), sessions: spy.sessions };
  }

  beforeAll(async () => {
    engine = await createNodeWasmEngine(2);
  });

  describe('all-ops classifier', () => {
    let results: ExperimentResult[];
    let sessions: SessionRecord[];
    beforeAll(async () => {
      ({ results, sessions } = await run(allOpsGraph(), [
        { backend: 'tensorrt' },
        { backend: 'snpe' },
        { backend: 'fbgemm' },
        { backend: 'tensorrt', wBits: 2 },
      ]));
    });

    it('contains every listed op', () => {
      const ops = opTypes(allOpsGraph());
      for (const op of LISTED_OPS) expect(ops.has(op), op).toBe(true);
    });

    it('quantizes every weighted layer and the activations the placement implies, with nothing left unknown', () => {
      for (const r of results) {
        expect(r.unquantizedOps).toEqual([]);
        expect(r.images).toEqual({ calib: CALIB, eval: EVAL, skipped: 0 });
        // 3 Conv (plain, grouped, depthwise) + MatMul + Gemm
        expect(r.quantPoints.weights).toBe(5);
      }
      // ModelQuantizer placement (TensorRT, SNPE): Conv inputs x, relu, relu6 (3) + Add's SiLU input
      // (the other is relu6) + the pools' shared input + GAP input + MatMul input + Gemm input = 8
      expect(results[0].quantPoints.activations).toBe(8);
      expect(results[1].quantPoints.activations).toBe(8);
      // FBGEMM also quantizes Concat inputs: + MaxPool and AveragePool outputs = 10
      expect(results[2].quantPoints.activations).toBe(10);
      const fq = fqSessions(sessions);
      expect(fq).toHaveLength(4);
      // one activation quantizer per point: Div→Round→Clip→Mul, or QuantizeLinear→DequantizeLinear (8 bits)
      fq.forEach((s, i) =>
        expect(s.graph().nodes.filter((n) => n.opType === 'Round' || n.opType === 'QuantizeLinear')).toHaveLength(
          results[i].quantPoints.activations,
        ),
      );
    });

    it('folds the BatchNormalization and keeps every other op in the graphs that ran', () => {
      const fp = fp32Session(sessions).graph();
      expect(opTypes(fp).has('BatchNormalization')).toBe(false);
      for (const s of [fp, ...fqSessions(sessions).map((q) => q.graph())]) {
        const ops = opTypes(s);
        for (const op of LISTED_OPS.filter((o) => o !== 'BatchNormalization')) expect(ops.has(op), op).toBe(true);
      }
    });

    it('W8A8 tracks FP32 and W2 weights do not', () => {
      const fp = concat(fp32Session(sessions).outputs);
      expect(fp).toHaveLength(EVAL * CLASSES);
      const sq = fqSessions(sessions).map((s) => sqnrDb(fp, concat(s.outputs)));
      console.log(`all-ops SQNR of class probabilities (dB): ${sq.map((x) => x.toFixed(1)).join(', ')}`);
      for (let i = 0; i < 3; i++) expect(sq[i]).toBeGreaterThanOrEqual(25);
      expect(sq[3]).toBeLessThan(sq[0] - 10);
    });
  });

  it('leaves an op the quantizer does not know (Softsign) in float and lists it, without failing', async () => {
    const { results, sessions } = await run(allOpsGraph('Softsign'), [{ backend: 'tensorrt' }]);
    expect(results[0].unquantizedOps).toEqual(['Softsign']);
    expect(results[0].quantPoints).toEqual({ weights: 5, activations: 8 });
    const fq = fqSessions(sessions)[0].graph();
    const softsign = fq.nodes.find((n) => n.opType === 'Softsign')!;
    expect(softsign).toBeDefined();
    // its output feeds GlobalAveragePool, so it is quantized as that op's input; its input is not touched
    expect(fq.nodes.some((n) => n.opType === 'Div' && n.inputs[0] === softsign.inputs[0])).toBe(false);
    expect(results[0].images.eval).toBe(EVAL);
  });

  it('runs an NHWC, fixed-batch-1, MatMul+Add classifier ending in Softmax, with the same FP32 scores as its NCHW twin', async () => {
    const sweep = [{ backend: 'tensorrt' as const }, { backend: 'snpe' as const }];
    const nhwc = await run(exportStyleGraph(false), sweep);
    const nchw = await run(exportStyleGraph(true), sweep);
    for (const r of [...nhwc.results, ...nchw.results]) {
      expect(r.unquantizedOps).toEqual([]);
      expect(r.images).toEqual({ calib: CALIB, eval: EVAL, skipped: 0 });
      expect(r.quantPoints.weights).toBe(2); // Conv + MatMul
    }
    // fixed batch 1: every evaluation run got exactly one image
    const fpNhwc = fp32Session(nhwc.sessions);
    expect(fpNhwc.outputs).toHaveLength(EVAL);
    for (const o of fpNhwc.outputs) expect(o).toHaveLength(CLASSES);
    // the NHWC input was fed in NHWC order: scores equal the NCHW twin's (same weights)
    const a = concat(fpNhwc.outputs);
    const b = concat(fp32Session(nchw.sessions).outputs);
    expect(a).toHaveLength(b.length);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    expect(worst).toBeLessThan(1e-5);
    // the images are told apart (not a constant output) and quantized runs agree with FP32
    expect(new Set(Array.from({ length: EVAL }, (_, r) => a[r * CLASSES].toFixed(6))).size).toBeGreaterThan(EVAL / 2);
    for (const r of nhwc.results) expect(r.agreement).toBeGreaterThanOrEqual(0.75);
    // the quantized NHWC and NCHW graphs compute the same thing too (the Transpose is transparent)
    expect(nhwc.results.map((r) => r.quant.top1)).toEqual(nchw.results.map((r) => r.quant.top1));
  });
});
