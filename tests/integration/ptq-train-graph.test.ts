/**
 * The backward graphs of train-graph.ts against finite differences, on the engine: a unit
 * with every op the backward pass knows (strided, depthwise, grouped and 1×1 convolutions,
 * Gemm and MatMul, Relu, Clip, Min, Max, Add, Sub, Mul, Div, GlobalAveragePool, Flatten) and
 * fake quantizers with learned step sizes, with and without QDrop's masks.
 *
 * Rounding has no derivative, so the check runs on the function the straight-through
 * estimator differentiates (test-side graph surgery, see surrogate()). Its finite differences are then exactly what the
 * STE and LSQ gradients claim, and at the base point it computes the same values.
 */
import { describe, expect, it } from 'vitest';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import type { EngineSession, FloatTensor } from '../../src/lib/engine/types.ts';
import { type Graph, makeGraph, makeNode, makeTensor, makeValueInfo } from '../../src/lib/onnx/ir.ts';
import { serializeModel } from '../../src/lib/onnx/model.ts';
import { buildUnitGraph, type UnitQuantizer } from '../../src/lib/ptq/train-graph.ts';
import { fakeQuantBackward } from '../../src/lib/ptq/lsq.ts';
import { mulberry32, randn } from '../support/onnx-helpers.ts';
import { probedTensors, surrogate } from '../support/grad-check.ts';

const B = 2;

/**
 * x [N,4,8,8] → Conv 3×3 s2 (4→6) → Relu → [q] Conv depthwise 3×3 (6) → Clip(0, 3) → [q]
 * Conv 1×1 (6→6) → Add(·, relu) → Min(·, 2.5) → [q] Conv grouped g=2 3×3 (6→4) → Max(·, −1)
 * → Mul 0.5 → Sub 0.1 → Div 1.5 → GlobalAveragePool → Flatten → [q] Gemm transB (4→5) → Relu
 * → [q] MatMul (5→3) → Add bias → y [N, 3]
 */
function unitGraph(seed: number): Graph {
  const rng = mulberry32(seed);
  const t = (name: string, dims: number[], scale: number) =>
    makeTensor(
      name,
      dims,
      randn(
        rng,
        dims.reduce((a, b) => a * b, 1),
        scale,
      ),
    );
  return makeGraph({
    opset: 13,
    inputs: [makeValueInfo('x', ['N', 4, 8, 8])],
    outputs: [makeValueInfo('y', ['N', 3])],
    initializers: [
      t('w1', [6, 4, 3, 3], 0.3),
      t('b1', [6], 0.1),
      t('w2', [6, 1, 3, 3], 0.4),
      t('w3', [6, 6, 1, 1], 0.4),
      t('b3', [6], 0.1),
      t('w4', [4, 3, 3, 3], 0.3),
      t('w5', [5, 4], 0.5),
      t('w6', [5, 3], 0.5),
      t('b6', [3], 0.1),
      makeTensor('lo', [], [0]),
      makeTensor('hi', [], [3]),
      makeTensor('cap', [], [2.5]),
      makeTensor('floor', [], [-1]),
      makeTensor('half', [], [0.5]),
      makeTensor('tenth', [], [0.1]),
      makeTensor('div', [], [1.5]),
    ],
    nodes: [
      makeNode(
        'Conv',
        ['x', 'w1', 'b1'],
        ['c1'],
        { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
        { name: 'conv1' },
      ),
      makeNode('Relu', ['c1'], ['r1'], {}, { name: 'relu1' }),
      makeNode('Conv', ['r1', 'w2'], ['c2'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 6 }, { name: 'dw' }),
      makeNode('Clip', ['c2', 'lo', 'hi'], ['r2'], {}, { name: 'clip' }),
      makeNode('Conv', ['r2', 'w3', 'b3'], ['c3'], { kernel_shape: [1, 1] }, { name: 'pw' }),
      makeNode('Add', ['c3', 'r1'], ['s'], {}, { name: 'add' }),
      makeNode('Min', ['s', 'cap'], ['m'], {}, { name: 'min' }),
      makeNode(
        'Conv',
        ['m', 'w4'],
        ['c4'],
        { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 2 },
        { name: 'grouped' },
      ),
      makeNode('Max', ['c4', 'floor'], ['mx'], {}, { name: 'max' }),
      makeNode('Mul', ['mx', 'half'], ['mu'], {}, { name: 'mul' }),
      makeNode('Sub', ['mu', 'tenth'], ['su'], {}, { name: 'sub' }),
      makeNode('Div', ['su', 'div'], ['dv'], {}, { name: 'div' }),
      makeNode('GlobalAveragePool', ['dv'], ['gap'], {}, { name: 'gap' }),
      makeNode('Flatten', ['gap'], ['flat'], { axis: 1 }, { name: 'flatten' }),
      makeNode('Gemm', ['flat', 'w5'], ['g5'], { transB: 1 }, { name: 'gemm' }),
      makeNode('Relu', ['g5'], ['r5'], {}, { name: 'relu5' }),
      makeNode('MatMul', ['r5', 'w6'], ['mm'], {}, { name: 'matmul' }),
      makeNode('Add', ['mm', 'b6'], ['y'], {}, { name: 'bias' }),
    ],
  });
}

const SHAPES = new Map<string, number[]>([
  ['x', [4, 8, 8]],
  ['c1', [6, 4, 4]],
  ['r1', [6, 4, 4]],
  ['c2', [6, 4, 4]],
  ['r2', [6, 4, 4]],
  ['c3', [6, 4, 4]],
  ['s', [6, 4, 4]],
  ['m', [6, 4, 4]],
  ['c4', [4, 4, 4]],
  ['mx', [4, 4, 4]],
  ['mu', [4, 4, 4]],
  ['su', [4, 4, 4]],
  ['dv', [4, 4, 4]],
  ['gap', [4, 1, 1]],
  ['flat', [4]],
  ['g5', [5]],
  ['r5', [5]],
  ['mm', [3]],
  ['y', [3]],
]);

const QUANTIZED: Record<string, [number, number, number]> = {
  // tensor: [scale, qmin, qmax] (zero point 0 except x, asymmetric)
  x: [0.25, 0, 15],
  r1: [0.2, 0, 15],
  r2: [0.25, 0, 15],
  m: [0.3, -8, 7],
  flat: [0.1, -8, 7],
  r5: [0.15, 0, 15],
};

function quantizers(drop: boolean): Map<string, UnitQuantizer> {
  return new Map(
    Object.entries(QUANTIZED).map(([t, [s, qmin, qmax]]) => [
      t,
      {
        qparams: {
          scale: Float32Array.of(s),
          zeroPoint: Int32Array.of(t === 'x' ? 4 : 0),
          qmin,
          qmax,
          axis: -1,
        },
        learn: true,
        drop,
      },
    ]),
  );
}

const LEARNED = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6'];

describe('reconstruction training graphs (engine) against finite differences', () => {
  for (const drop of [false, true]) {
    it(`weight and step-size gradients match ${drop ? 'with QDrop masks' : 'without dropping'}`, async () => {
      const engine = await createNodeWasmEngine(2);
      const source = unitGraph(7);
      const rng = mulberry32(11);
      const spec = {
        source,
        nodes: source.nodes,
        input: 'x',
        output: 'y',
        shapes: SHAPES,
        batch: B,
        weights: new Map(LEARNED.map((w) => [w, { learn: true }])),
        quantizers: quantizers(drop),
      };
      const train = buildUnitGraph({ ...spec, backward: true });
      const fwd = buildUnitGraph({ ...spec, backward: false });
      const probed = probedTensors(fwd.graph);
      const probe: Graph = {
        ...fwd.graph,
        outputs: [...fwd.graph.outputs, ...probed.filter((t) => t !== fwd.output).map((d) => makeValueInfo(d, null))],
      };
      const feeds: Record<string, FloatTensor> = {
        x: { data: randn(rng, B * 4 * 64, 1, 1.5), dims: [B, 4, 8, 8] },
        [train.target]: { data: new Float32Array(B * 3), dims: [B, 3] },
      };
      for (const w of LEARNED) {
        const init = source.initializers.get(w)!;
        feeds[w] = { data: Float32Array.from(init.data as Float32Array), dims: [...init.dims] };
      }
      for (const [t, name] of train.scaleInputs) feeds[name] = { data: Float32Array.of(QUANTIZED[t][0]), dims: [] };
      for (const [t, name] of train.maskInputs) {
        const n = B * SHAPES.get(t)!.reduce((a, b) => a * b, 1);
        feeds[name] = {
          data: Float32Array.from({ length: n }, () => (rng() < 0.5 ? 1 : 0)),
          dims: [B, ...SHAPES.get(t)!],
        };
      }
      expect(train.maskInputs.size).toBe(drop ? 6 : 0);

      const run = async (g: Graph, f: Record<string, FloatTensor>, fetches: string[]) => {
        const s: EngineSession = await engine.createSession(serializeModel(g));
        try {
          return await s.run(f, fetches);
        } finally {
          await s.release();
        }
      };
      // a target near the output keeps the loss small, so float32 differences of it resolve the gradient
      const y0 = (await run(fwd.graph, feeds, [fwd.output]))[fwd.output].data;
      feeds[train.target] = { data: Float32Array.from(y0, (v) => v + 0.3 * randn(rng, 1, 1)[0]), dims: [B, 3] };
      const analytic = await run(train.graph, feeds, [
        train.loss!,
        ...train.weightGrads.values(),
        ...train.scaleGrads.values(),
      ]);
      const sur = surrogate(fwd.graph, await run(probe, feeds, probed));
      const surFeeds = { ...feeds, ...sur.feeds };
      const sSession = await engine.createSession(serializeModel(sur.graph));
      const norm = 1 / B;
      const loss = async (f: Record<string, FloatTensor>) => (await sSession.run(f, [fwd.sse]))[fwd.sse].data[0] * norm;
      try {
        // at the base point the surrogate is the quantized forward
        expect(await loss(surFeeds)).toBeCloseTo(analytic[train.loss!].data[0], 5);
        const bad: string[] = [];
        const check = (what: string, fd: number, an: number) => {
          if (!(Math.abs(fd - an) < 2e-3 * Math.max(Math.abs(fd), Math.abs(an)) + 1e-5))
            bad.push(`${what}: finite difference ${fd}, gradient ${an}`);
        };
        for (const w of LEARNED) {
          const g = analytic[train.weightGrads.get(w)!].data;
          const w0 = feeds[w].data;
          const dir = randn(rng, w0.length, 1);
          const eps = 1e-2;
          const plus = Float32Array.from(w0, (v, i) => v + eps * dir[i]);
          const minus = Float32Array.from(w0, (v, i) => v - eps * dir[i]);
          const fd =
            ((await loss({ ...surFeeds, [w]: { ...feeds[w], data: plus } })) -
              (await loss({ ...surFeeds, [w]: { ...feeds[w], data: minus } }))) /
            (2 * eps);
          let an = 0;
          for (let i = 0; i < g.length; i++) an += g[i] * dir[i];
          check(w, fd, an);
          expect(Math.abs(an)).toBeGreaterThan(1e-4);
        }
        for (const [t, name] of train.scaleInputs) {
          const s0 = QUANTIZED[t][0];
          const h = 2e-2 * s0;
          const at = async (s: number) => loss({ ...surFeeds, [name]: { data: Float32Array.of(s), dims: [] } });
          const fd = ((await at(s0 + h)) - (await at(s0 - h))) / (2 * h);
          const an = analytic[train.scaleGrads.get(t)!].data[0];
          check(`step size of ${t}`, fd, an);
        }
        expect(bad).toEqual([]);
      } finally {
        await sSession.release();
      }
    });
  }

  it('the step-size gradient of a lone quantizer is the TypeScript LSQ formula', async () => {
    // x → [q, learned, dropped] → Identity → y; loss ½-free: Σ(y − t)² / N
    const engine = await createNodeWasmEngine(2);
    const source = makeGraph({
      opset: 13,
      inputs: [makeValueInfo('x', ['N', 40])],
      outputs: [makeValueInfo('y', ['N', 40])],
      nodes: [makeNode('Identity', ['x'], ['y'], {}, { name: 'id' })],
    });
    const rng = mulberry32(3);
    const qp = { scale: Float32Array.of(0.3), zeroPoint: Int32Array.of(2), qmin: 0, qmax: 7, axis: -1 };
    for (const drop of [false, true]) {
      const ug = buildUnitGraph({
        source,
        nodes: source.nodes,
        input: 'x',
        output: 'y',
        shapes: new Map([
          ['x', [40]],
          ['y', [40]],
        ]),
        batch: 1,
        weights: new Map(),
        quantizers: new Map([['x', { qparams: qp, learn: true, drop }]]),
        backward: true,
      });
      const x = randn(rng, 40, 1.5, 0.5);
      const target = randn(rng, 40, 1);
      const mask = Float32Array.from({ length: 40 }, () => (rng() < 0.5 ? 1 : 0));
      const feeds: Record<string, FloatTensor> = {
        x: { data: x, dims: [1, 40] },
        [ug.target]: { data: target, dims: [1, 40] },
        [ug.scaleInputs.get('x')!]: { data: Float32Array.of(0.3), dims: [] },
        ...(drop ? { [ug.maskInputs.get('x')!]: { data: mask, dims: [1, 40] } } : {}),
      };
      const s = await engine.createSession(serializeModel(ug.graph));
      const res = await s.run(feeds, [ug.output, ug.scaleGrads.get('x')!]);
      await s.release();
      // dL/dy = 2(y − t) (batch 1, one position per channel: the normalisation is 1)
      const y = res[ug.output].data;
      const gy = Float64Array.from(y, (v, i) => 2 * (v - target[i]));
      const ref = fakeQuantBackward(x, gy, 0.3, qp.qmin - 2, qp.qmax - 2, drop ? mask : undefined);
      expect(res[ug.scaleGrads.get('x')!].data[0]).toBeCloseTo(ref.gs, 4);
    }
  });
});
