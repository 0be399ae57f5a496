/**
 * Shared test helpers for the graph tests: a seeded RNG, a small residual CNN built in
 * code, and a runner over the project's engine (onnxruntime-web wasm in Node).
 * Not a test file itself (no .test.ts suffix).
 */
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import type { FloatTensor } from '../../src/lib/engine/types.ts';
import { type Graph, makeGraph, makeNode, makeTensor, makeValueInfo } from '../../src/lib/onnx/ir.ts';
import { serializeModel } from '../../src/lib/onnx/model.ts';
import { mulberry32 } from '../../src/lib/util/random.ts';

export const MOBILENET = fileURLToPath(new URL('../../../shared/data/models/mobilenetv2-7-fp32.onnx', import.meta.url));
export const HAVE_MOBILENET = existsSync(MOBILENET);
export const NO_MOBILENET_MSG = `MobileNet-V2 not found at ${MOBILENET}; skipping real-model tests.`;

export { mulberry32 } from '../../src/lib/util/random.ts';

export function randn(rng: () => number, n: number, scale = 1, offset = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    // Box-Muller
    const u = Math.max(rng(), 1e-12);
    const v = rng();
    out[i] = offset + scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

export function uniform(rng: () => number, n: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rng();
  return out;
}

/**
 * input [N,3,8,8] → Conv 3→4 k3 pad1 (+bias) → BN1 → Relu (r1) → depthwise Conv group=4
 * (no bias) → BN2 (b2) → Add(r1, b2) (sum) → BN3 (not after a Conv) → GlobalAveragePool →
 * Flatten → Gemm 4→5 transB=1 → output [N,5].
 */
export function smallCnn(opts: { seed?: number; opset?: number; relu6Clip?: boolean } = {}): Graph {
  const rng = mulberry32(opts.seed ?? 1);
  const bn = (p: string, c: number) => [
    makeTensor(`${p}_gamma`, [c], uniform(rng, c, 0.5, 1.5)),
    makeTensor(`${p}_beta`, [c], randn(rng, c, 0.3)),
    makeTensor(`${p}_mean`, [c], randn(rng, c, 0.5)),
    makeTensor(`${p}_var`, [c], uniform(rng, c, 0.2, 2)),
  ];
  const inits = [
    makeTensor('w1', [4, 3, 3, 3], randn(rng, 108, 0.3)),
    makeTensor('b1', [4], randn(rng, 4, 0.1)),
    ...bn('bn1', 4),
    makeTensor('w2', [4, 1, 3, 3], randn(rng, 36, 0.4)),
    ...bn('bn2', 4),
    ...bn('bn3', 4),
    makeTensor('wfc', [5, 4], randn(rng, 20, 0.5)),
    makeTensor('bfc', [5], randn(rng, 5, 0.1)),
  ];
  const bnNode = (p: string, x: string, y: string) =>
    makeNode(
      'BatchNormalization',
      [x, `${p}_gamma`, `${p}_beta`, `${p}_mean`, `${p}_var`],
      [y],
      { epsilon: 1e-5 },
      { name: p },
    );
  const opset = opts.opset ?? 13;
  // ReLU6 as Clip: bounds are attributes before opset 11, inputs from it on
  const clipInputs = opset >= 11;
  if (opts.relu6Clip && clipInputs) inits.push(makeTensor('relu6_min', [], [0]), makeTensor('relu6_max', [], [6]));
  const act = opts.relu6Clip
    ? clipInputs
      ? makeNode('Clip', ['c1bn', 'relu6_min', 'relu6_max'], ['r1'], {}, { name: 'relu1' })
      : makeNode('Clip', ['c1bn'], ['r1'], { min: 0, max: 6 }, { name: 'relu1' })
    : makeNode('Relu', ['c1bn'], ['r1'], {}, { name: 'relu1' });
  return makeGraph({
    opset,
    inputs: [makeValueInfo('input', ['N', 3, 8, 8])],
    outputs: [makeValueInfo('output', ['N', 5])],
    initializers: inits,
    nodes: [
      makeNode('Conv', ['input', 'w1', 'b1'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: 'conv1' }),
      bnNode('bn1', 'c1', 'c1bn'),
      act,
      makeNode(
        'Conv',
        ['r1', 'w2'],
        ['c2'],
        { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 4 },
        { name: 'dwconv' },
      ),
      bnNode('bn2', 'c2', 'b2'),
      makeNode('Add', ['r1', 'b2'], ['sum'], {}, { name: 'add' }),
      bnNode('bn3', 'sum', 'sumbn'),
      makeNode('GlobalAveragePool', ['sumbn'], ['gap'], {}, { name: 'gap' }),
      makeNode('Flatten', ['gap'], ['flat'], { axis: 1 }, { name: 'flatten' }),
      makeNode('Gemm', ['flat', 'wfc', 'bfc'], ['output'], { transB: 1 }, { name: 'fc' }),
    ],
  });
}

/** Serialize, run once on the wasm engine, release. */
export async function runGraph(
  g: Graph,
  feeds: Record<string, FloatTensor>,
  fetches?: string[],
): Promise<Record<string, FloatTensor>> {
  const engine = await createNodeWasmEngine(2);
  const s = await engine.createSession(serializeModel(g));
  try {
    return await s.run(feeds, fetches);
  } finally {
    await s.release();
  }
}

export async function runBytes(
  bytes: Uint8Array,
  feeds: Record<string, FloatTensor>,
): Promise<Record<string, FloatTensor>> {
  const engine = await createNodeWasmEngine(2);
  const s = await engine.createSession(bytes);
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Index of the first element whose bits differ (NaN-safe, -0 ≠ +0 ignored), or -1. */
export function firstDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  return -1;
}
