/**
 * `npm run bench:ptq-memory`: does layer-wise reconstruction fit in memory on ResNet-18,
 * whose 3×3 convs have K = Cin·9 up to 4,608 (a K×K Gram matrix is 85 MB of float32,
 * 170 MB as the float64 sum)? Runs the pipeline with AdaRound or GPTQ, quantized-prefix
 * inputs (the default), on the exact-architecture ResNet-18 with SYNTHETIC seeded weights —
 * the shapes are ResNet-18's, the accuracy means nothing — and prints the peak resident
 * memory of the process and the time of the Gram passes and the solver.
 * Options: [--data DIR] [--engine wasm|node] [--ptq gptq|adaround] [--ptq-iters N]
 *   [--calib N] [--eval N] [--w-bits N]
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DiskCropStore, loadImageFolder } from '../src/lib/data/dataset.node.ts';
import { createNodeEngine } from '../src/lib/engine/node.ts';
import { resolveConfig } from '../src/lib/config/resolve.ts';
import { buildResNet18 } from '../src/lib/models/builders.ts';
import { getModelEntry, toModelSpec } from '../src/lib/models/registry.ts';
import { runPipeline } from '../src/lib/pipeline/run.ts';
import type { PtqMethod } from '../src/lib/config/names.ts';

const shared = resolve(import.meta.dirname, '../../shared/data');
const { values: v } = parseArgs({
  options: {
    data: { type: 'string', default: resolve(shared, 'imagenet-sample') },
    labels: { type: 'string', default: resolve(shared, 'imagenet_class_index.json') },
    engine: { type: 'string', default: 'wasm' },
    ptq: { type: 'string', default: 'gptq' },
    'ptq-iters': { type: 'string', default: '300' },
    calib: { type: 'string', default: '128' },
    eval: { type: 'string', default: '8' },
    'w-bits': { type: 'string', default: '4' },
  },
});

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const dataset = await loadImageFolder(v.data, v.labels);
const engine = await createNodeEngine(v.engine === 'node' ? 'node' : 'wasm');
const modelBytes = buildResNet18(1);
const model = { ...toModelSpec(getModelEntry('resnet18')), label: 'SYNTHETIC ResNet-18 (seeded weights)' };
const cfg = resolveConfig({
  backend: 'academic',
  wBits: Number(v['w-bits']),
  aBits: 8,
  ptq: v.ptq as PtqMethod,
  ptqIters: Number(v['ptq-iters']),
  calib: Number(v.calib),
  eval: Number(v.eval),
  seed: 0,
  model: 'resnet18',
});
const before = process.memoryUsage().rss;
process.stderr.write(
  `ResNet-18 (SYNTHETIC weights), ${cfg.ptq} with ${cfg.ptqInputs} inputs, W${cfg.wBits}A8, ${cfg.calib} calibration images, ${engine.description}\n`,
);
let last = '';
const [r] = await runPipeline(
  [cfg],
  { engine, modelBytes, model, dataset, cropStore: new DiskCropStore() },
  {
    onProgress: (p) => {
      const head = p.message.split(' ').slice(0, 3).join(' ');
      if (head !== last) process.stderr.write(`[${p.stage}] ${p.message}\n`);
      last = head;
    },
  },
);
const peak = process.resourceUsage().maxRSS * 1024;
const solved = r.ptq?.layers.filter((l) => !l.skipped).length ?? 0;
process.stdout.write(
  `ResNet-18 ${cfg.ptq} (${cfg.ptqInputs} inputs), ${solved} layers reconstructed: Gram passes ${r.ptq?.gramSeconds.toFixed(1)} s, solving ${r.ptq?.solveSeconds.toFixed(1)} s; ` +
    `peak resident memory ${mib(peak)} (${mib(before)} before the run)\n`,
);
