/**
 * `npm run bench:ptq-memory`: does layer-wise reconstruction fit in memory on ResNet-18,
 * whose 3×3 convs have K = Cin·9 up to 4,608 (a K×K Gram matrix is 85 MB of float32,
 * 170 MB as the float64 sum)? Runs the pipeline with AdaRound or GPTQ, quantized-prefix
 * inputs (the default), on the exact-architecture ResNet-18 with SYNTHETIC seeded weights —
 * the shapes are ResNet-18's, the accuracy means nothing — and prints the peak resident
 * memory of the process and the time of the Gram passes and the solver.
 * Options (`--help`; scripts/cli-specs.ts): [--data DIR] [--engine wasm|node] [--ptq gptq|adaround] [--ptq-iters N]
 *   [--calib N] [--eval N] [--w-bits N]
 */
import { DiskCropStore, loadImageFolder } from '../src/lib/data/dataset.node.ts';
import { createNodeEngine } from '../src/lib/engine/node.ts';
import { resolveConfig } from '../src/lib/config/resolve.ts';
import { buildResNet18 } from '../src/lib/models/builders.ts';
import { getModelEntry, toModelSpec } from '../src/lib/models/registry.ts';
import { runPipeline } from '../src/lib/pipeline/run.ts';
import type { PtqMethod } from '../src/lib/config/names.ts';
import { configValue, parseCliOrExit } from '../src/cli/options.ts';
import { BENCH_PTQ_MEMORY_CLI } from './cli-specs.ts';

const cli = parseCliOrExit(BENCH_PTQ_MEMORY_CLI);
const arg = (name: string) => configValue(cli, name);
const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const dataset = await loadImageFolder(arg('dataset') as string, cli.values.labels as string);
const engine = await createNodeEngine(cli.values.engine as 'wasm' | 'node');
const modelBytes = buildResNet18(1);
const model = { ...toModelSpec(getModelEntry('resnet18')), label: 'SYNTHETIC ResNet-18 (seeded weights)' };
const cfg = resolveConfig({
  backend: 'academic',
  wBits: arg('wBits') as number,
  aBits: 8,
  ptq: arg('ptq') as PtqMethod,
  ptqIters: arg('ptqIters') as number,
  calib: arg('calib') as number,
  eval: arg('eval') === 'rest' ? dataset.items.length - (arg('calib') as number) : (arg('eval') as number),
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
