/**
 * `npm run bench:deploy`: MQBench's deployability question on the real MobileNet-V2. For
 * each backend preset the pipeline runs the simulation (MQBench's fake quantization); from
 * its QuantizedRun the integer export is run on onnxruntime's integer kernels (QDQ fusions
 * on) and the deploy-exact simulation is evaluated, all on the same evaluation images.
 * Prints per preset: simulated top-1, deployed top-1, their top-1 agreement, deploy-exact
 * top-1 and its agreement with the deployment, the deployed speed against FP32 on the same
 * engine, integer/float op counts, and the first layer where the default simulation and the
 * deployment differ by more than one integer step, with its reason.
 * Options: `npm run bench:deploy -- --help` (scripts/cli-specs.ts, BENCH_DEPLOY_CLI).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { DiskCropStore, loadImageFolder } from '../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../src/lib/data/preprocess.ts';
import { createNodeEngine } from '../src/lib/engine/node.ts';
import { resolveConfig } from '../src/lib/config/resolve.ts';
import type { BackendName } from '../src/lib/config/names.ts';
import { configValue, configValues, parseCliOrExit } from '../src/cli/options.ts';
import { BENCH_DEPLOY_CLI } from './cli-specs.ts';
import { runPipeline } from '../src/lib/pipeline/run.ts';
import { cliDeployRecord, deployRow, deployTable, type DeployRow } from '../src/cli/deploy.ts';

const cli = parseCliOrExit(BENCH_DEPLOY_CLI);
const v = cli.values as {
  engine: 'node' | 'wasm';
  threads?: number;
  labels: string;
  images: number;
  speedRounds: number;
  json?: string;
};
const backends = configValues(cli, 'backend') as BackendName[];
const dataset = await loadImageFolder(configValue(cli, 'dataset') as string, v.labels);
const calib = configValue(cli, 'calib') as number;
const evalCount = configValue(cli, 'eval') as number | 'rest';
const evalN = evalCount === 'rest' ? dataset.items.length - calib : evalCount;
const engine = await createNodeEngine(v.engine, v.threads);
const configs = backends.map((backend) =>
  resolveConfig({ backend, model: 'mobilenet-v2', wBits: 8, aBits: 8, calib, eval: evalN, seed: 0 }),
);
process.stderr.write(
  `MobileNet-V2, ${backends.join(', ')} W8A8, ${calib} calibration / ${evalN} evaluation images, seed 0, engine ${engine.description}\n`,
);
const rows: DeployRow[] = [];
const t0 = performance.now();
let last = '';
await runPipeline(
  configs,
  {
    engine,
    modelBytes: new Uint8Array(readFileSync(configValue(cli, 'model') as string)),
    model: { id: 'mobilenet-v2', label: 'MobileNet-V2', preprocess: TORCHVISION_SPEC, classes: 1000 },
    dataset,
    cropStore: new DiskCropStore(),
  },
  {
    onProgress: (p) => {
      if (p.stage !== last) process.stderr.write(`[${p.stage}] ${p.message}\n`);
      last = p.stage;
    },
    onQuantized: async (run) => {
      const t = performance.now();
      const deployed = await cliDeployRecord(engine, run, {
        divergenceImages: v.images,
        exact: true,
        speedRounds: v.speedRounds,
        fusionCheck: engine.kind === 'node',
      });
      rows.push(deployRow(run, deployed));
      const f = deployed.fusions;
      process.stderr.write(
        `[deploy] ${run.config.backend}: ${((performance.now() - t) / 1000).toFixed(0)} s${f ? `; fused ${f.kernels.map((k) => `${k.kernel} ${k.found}/${k.expected}`).join(', ')}${f.missing.length ? `; NOT fused: ${f.missing.join(', ')}` : ''}${f.unexpected.length ? `; fused but not planned: ${f.unexpected.join(', ')}` : ''}` : ''}\n`,
      );
    },
  },
);
process.stdout.write(`\n${deployTable(rows)}\n`);
for (const r of rows) {
  const d = r.deployed;
  process.stdout.write(`\n${r.label}: ${d.integerOps} op(s) on integer kernels`);
  if (d.floatOps.length)
    process.stdout.write(`, ${d.floatOps.length} quantized op(s) in float (${d.floatOps.join(', ')})`);
  if (d.fusions)
    process.stdout.write(`; optimized session: ${d.fusions.kernels.map((k) => `${k.kernel} ${k.found}`).join(', ')}`);
  if (d.speed)
    process.stdout.write(
      `; ${d.speed.deployedMsPerImage.toFixed(1)} ms/image deployed vs ${d.speed.fp32MsPerImage.toFixed(1)} ms/image FP32 (median of ${d.speed.rounds}, batch ${d.speed.batch})`,
    );
  if (d.firstDifference)
    process.stdout.write(
      `\n  first difference: ${d.firstDifference.label} (${d.firstDifference.tensor}), ${d.firstDifference.maxSteps} step(s) on ${(100 * d.firstDifference.share).toFixed(3)}%: ${d.firstDifference.reasons.join('; ')}`,
    );
  if (d.firstDivergence)
    process.stdout.write(
      `\n  first divergence (> 1 step): ${d.firstDivergence.label} (${d.firstDivergence.tensor}): ${d.firstDivergence.reasons.join('; ')}`,
    );
  process.stdout.write('\n');
}
process.stdout.write(
  `\n(${evalN} evaluation images; layer comparison on the first ${rows[0]?.deployed.divergenceImages ?? 0}; engine ${engine.description}; ${((performance.now() - t0) / 1000).toFixed(0)} s)\n`,
);
if (v.json) writeFileSync(v.json, JSON.stringify(rows, null, 2));
