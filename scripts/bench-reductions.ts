/**
 * `npx tsx scripts/bench-reductions.ts [threads] [rounds]`: the in-graph min/max of one
 * activation-sized tensor ([8, 96, 112, 112], MobileNet-V2's largest quantized input at the
 * histogram sub-batch), reduced over all axes at once (the statistics graph before
 * 2026-12-07) against per image first, then over the batch (onnx/calibration.ts now), on
 * onnxruntime-web's wasm engine, with and without the tensor fetched as well (histogram
 * calibration fetches it, MinMax does not). Prints the median of the rounds per form, each
 * round running every form once, so the forms share the machine's state.
 */
import { createNodeWasmEngine } from '../src/lib/engine/node.ts';
import type { EngineSession } from '../src/lib/engine/types.ts';
import { type Graph, makeGraph, makeNode } from '../src/lib/onnx/ir.ts';
import { serializeModel } from '../src/lib/onnx/model.ts';

const threads = Number(process.argv[2] ?? 2);
const rounds = Number(process.argv[3] ?? 9);
const shape = [8, 96, 112, 112];
const n = shape.reduce((a, b) => a * b, 1);
const x = new Float32Array(n);
for (let i = 0; i < n; i++) x[i] = Math.sin(i * 0.37) * 3 + ((i * 7919) % 1000) / 500;

function graph(form: 'none' | 'all axes' | 'per image', fetch: boolean): Graph {
  const r = { name: 'r', dtype: 'float32' as const, shape };
  const scalars =
    form === 'none'
      ? []
      : [
          { name: 'mn', dtype: 'float32' as const, shape: [] },
          { name: 'mx', dtype: 'float32' as const, shape: [] },
        ];
  const reductions =
    form === 'all axes'
      ? [makeNode('ReduceMin', ['r'], ['mn'], { keepdims: 0 }), makeNode('ReduceMax', ['r'], ['mx'], { keepdims: 0 })]
      : form === 'per image'
        ? [
            makeNode('Flatten', ['r'], ['v'], { axis: 1 }),
            makeNode('ReduceMin', ['v'], ['rmn'], { keepdims: 0, axes: [1] }),
            makeNode('ReduceMax', ['v'], ['rmx'], { keepdims: 0, axes: [1] }),
            makeNode('ReduceMin', ['rmn'], ['mn'], { keepdims: 0 }),
            makeNode('ReduceMax', ['rmx'], ['mx'], { keepdims: 0 }),
          ]
        : [];
  return makeGraph({
    inputs: [{ name: 'x', dtype: 'float32', shape }],
    // the Relu's output stands for an activation; without a fetch, something must be an output
    outputs: fetch || form === 'none' ? [r, ...scalars] : scalars,
    nodes: [makeNode('Relu', ['x'], ['r']), ...reductions],
  });
}

const engine = await createNodeWasmEngine(threads);
console.log(`${engine.description}; tensor [${shape.join(', ')}]; ${rounds} rounds, median`);
for (const fetch of [true, false]) {
  // without a fetch there is no baseline graph (it would need an output): totals only
  const forms = fetch ? (['none', 'all axes', 'per image'] as const) : (['all axes', 'per image'] as const);
  const sessions: EngineSession[] = [];
  for (const f of forms) sessions.push(await engine.createSession(serializeModel(graph(f, fetch))));
  const times = forms.map((): number[] => []);
  const results = forms.map((): number[] => []);
  for (let r = 0; r <= rounds; r++)
    for (let i = 0; i < forms.length; i++) {
      const t = performance.now();
      const out = await sessions[i].run({ x: { data: x, dims: shape } });
      if (r > 0) times[i].push(performance.now() - t); // round 0 warms up
      if (forms[i] !== 'none') results[i] = [out.mn.data[0], out.mx.data[0]];
    }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  const base = fetch ? med(times[0]) : NaN;
  console.log(fetch ? 'the tensor fetched too (histogram calibration):' : 'min and max only (MinMax calibration):');
  for (let i = 0; i < forms.length; i++)
    console.log(
      `  ${forms[i].padEnd(10)} ${med(times[i]).toFixed(1).padStart(6)} ms` +
        (forms[i] === 'none'
          ? ''
          : `${fetch ? `  reductions +${(med(times[i]) - base).toFixed(1)} ms` : ''}  min/max ${results[i].join(' / ')}`),
    );
  const [a, b] = results.slice(-2);
  if (a.join() !== b.join()) throw new Error(`the two forms disagree: ${a.join(' / ')} against ${b.join(' / ')}`);
  for (const s of sessions) await s.release();
}
