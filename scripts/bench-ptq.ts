/**
 * `npm run bench:ptq`: the reconstruction table of issue 12 — method × weight bit width
 * × top-1 × time — on the real MobileNet-V2, Academic preset (first and last layer
 * 8-bit), A8, 128 calibration images, seed 0. Times are printed, not asserted: the
 * machines are shared and their load varies by several times.
 * Options: [--model FILE] [--data DIR] [--engine wasm|node] [--threads N]
 *   [--ptq adaround,gptq] [--ptq-iters N] [--w-bits 4,3,2] [--calib N] [--eval N]
 *   [--inputs quantized-prefix,fp32] [--bn-reestimate 0,1]
 *   (--eval defaults to the 872 images left after calibration)
 */
import { resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DiskCropStore, loadImageFolder } from '../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../src/lib/data/preprocess.ts';
import { createNodeEngine } from '../src/lib/engine/node.ts';
import { DEFAULT_PTQ_ITERS, resolveConfig } from '../src/lib/config/resolve.ts';
import { table } from '../src/lib/experiment/report.ts';
import { runPipeline } from '../src/lib/pipeline/run.ts';
import { PTQ_INPUTS, PTQ_METHODS, type PtqInputs, type PtqMethod } from '../src/lib/config/names.ts';

const shared = resolve(import.meta.dirname, '../../shared/data');
const { values: v } = parseArgs({
  options: {
    model: { type: 'string', default: resolve(shared, 'models/mobilenetv2-7-fp32.onnx') },
    data: { type: 'string', default: resolve(shared, 'imagenet-sample') },
    labels: { type: 'string', default: resolve(shared, 'imagenet_class_index.json') },
    engine: { type: 'string', default: 'wasm' },
    threads: { type: 'string' },
    ptq: { type: 'string', default: 'none,adaround,gptq' },
    'ptq-iters': { type: 'string', default: String(DEFAULT_PTQ_ITERS) },
    'w-bits': { type: 'string', default: '4' },
    calib: { type: 'string', default: '128' },
    eval: { type: 'string' },
    inputs: { type: 'string', default: 'quantized-prefix' },
    'bn-reestimate': { type: 'string', default: '0' },
  },
});
const methods = v.ptq.split(',').map((m) => {
  if (!PTQ_METHODS.includes(m as PtqMethod))
    throw new Error(`Unknown --ptq "${m}". Choose from ${PTQ_METHODS.join(', ')}.`);
  return m as PtqMethod;
});
const inputs = v.inputs.split(',').map((m) => {
  if (!PTQ_INPUTS.includes(m as PtqInputs))
    throw new Error(`Unknown --inputs "${m}". Choose from ${PTQ_INPUTS.join(', ')}.`);
  return m as PtqInputs;
});
const engineKind = v.engine === 'node' ? 'node' : 'wasm';
const dataset = await loadImageFolder(v.data, v.labels);
const calib = Number(v.calib);
const evalN = v.eval ? Number(v.eval) : dataset.items.length - calib;
const bn = v['bn-reestimate'].split(',').map((x) => x === '1' || x === 'true');
const configs = v['w-bits'].split(',').flatMap((b) =>
  methods.flatMap((ptq) =>
    (ptq === 'none' ? inputs.slice(0, 1) : inputs).flatMap((ptqInputs) =>
      bn.map((bnReestimate) =>
        resolveConfig({
          backend: 'academic',
          wBits: Number(b),
          aBits: 8,
          ptq,
          ptqIters: Number(v['ptq-iters']),
          ptqInputs,
          bnReestimate,
          calib,
          eval: evalN,
          seed: 0,
        }),
      ),
    ),
  ),
);
const engine = await createNodeEngine(engineKind, v.threads ? Number(v.threads) : undefined);
process.stderr.write(
  `MobileNet-V2, Academic WxA8, ${calib} calibration / ${evalN} evaluation images, layer inputs ${v.inputs}, engine ${engine.description}\n`,
);
let last = '';
const results = await runPipeline(
  configs,
  {
    engine,
    modelBytes: new Uint8Array(readFileSync(v.model)),
    model: { id: 'mobilenet-v2', label: 'MobileNet-V2', preprocess: TORCHVISION_SPEC, classes: 1000 },
    dataset,
    cropStore: new DiskCropStore(),
  },
  {
    onProgress: (p) => {
      if (p.message.split(' ').slice(0, 2).join(' ') !== last) process.stderr.write(`[${p.stage}] ${p.message}\n`);
      last = p.message.split(' ').slice(0, 2).join(' ');
    },
  },
);
const rows = results.map((r) => [
  (r.config.ptq === 'adaround'
    ? `adaround (${r.config.ptqIters} it)`
    : r.config.ptq === 'gptq'
      ? 'gptq'
      : 'round-to-nearest') +
    (r.config.ptq !== 'none' ? `, ${r.config.ptqInputs} inputs` : '') +
    (r.config.bnReestimate ? ' + BN re-estimation' : ''),
  `W${r.config.wBits}A8`,
  (100 * r.quant.top1).toFixed(2),
  r.ptq ? r.ptq.gramSeconds.toFixed(1) : '-',
  r.ptq ? r.ptq.solveSeconds.toFixed(1) : '-',
  r.ptq ? (r.ptq.gramSeconds + r.ptq.solveSeconds).toFixed(1) : '-',
  r.seconds.toFixed(1),
]);
process.stdout.write(`\nFP32 top-1 ${(100 * results[0].fp32.top1).toFixed(2)}%\n`);
process.stdout.write(`${table(['method', 'bits', 'top-1 %', 'Gram s', 'solve s', 'PTQ s', 'config s'], rows)}\n`);
process.stdout.write(
  'PTQ s = Gram matrices (with fp32 inputs shared by every config of the run and counted in each row; with quantized-prefix inputs one pass per layer of the config) + solving; config s = the whole config (its share of decoding, FP32 and calibration, PTQ, fixes, evaluation); the machine load at the time inflates all of them.\n',
);
