/**
 * `npm run bench:ptq`: the reconstruction table — method × weight/activation bit width ×
 * top-1 × time — on the real MobileNet-V2, Academic preset (first and last layer 8-bit),
 * 128 calibration images, seed 0. Times are printed, not asserted: the machines are shared
 * and their load varies by several times.
 * Options (`--help`; scripts/cli-specs.ts): [--model FILE] [--data DIR] [--engine wasm|node] [--threads N]
 *   [--ptq none,adaround,gptq,brecq,qdrop] [--ptq-iters N[,N…]] [--w-bits 4,3,2] [--a-bits 8,4]
 *   [--ptq-act-ranges auto,learned,calibrated] [--ptq-drop 50] [--calib N] [--eval N]
 *   [--ptq-inputs quantized-prefix,fp32] [--bn-reestimate 0,1] [--units]
 *   (--eval defaults to the 872 images left after calibration; --units prints each block's
 *   or layer's error and learned step sizes)
 *
 * Every config is evaluated by runConfig, the pipeline's own per-config steps; configs whose
 * reconstruction learns activation step sizes (BRECQ, QDrop, AdaRound with learned ranges)
 * pass those step sizes to it, as the pipeline does. A list of --ptq-iters gives the
 * iterations-versus-accuracy curve (one row per count; docs/reconstruction-low-bit.md).
 */
import { readFileSync } from 'node:fs';
import { DiskCropStore, loadImageFolder } from '../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../src/lib/data/preprocess.ts';
import { createNodeEngine } from '../src/lib/engine/node.ts';
import { DEFAULT_PTQ_ITERS, resolveConfig } from '../src/lib/config/resolve.ts';
import { ptqTable, table } from '../src/lib/experiment/report.ts';
import { DEFAULT_TUNING, resolveModelInput } from '../src/lib/experiment/inputs.ts';
import { quantizeActivations, quantizeWeights, type ActivationQuant } from '../src/lib/experiment/quantize.ts';
import { prepareGroup } from '../src/lib/pipeline/prepare.ts';
import { runConfig } from '../src/lib/pipeline/config-run.ts';
import { reconstructConfig } from '../src/lib/ptq/stage.ts';
import { parseModel } from '../src/lib/onnx/model.ts';
import type { ExperimentConfig } from '../src/lib/config/types.ts';
import type { PtqReport } from '../src/lib/protocol/ptq.ts';
import {
  learnsActivationRanges,
  PTQ_LABEL,
  type PtqActRanges,
  type PtqInputs,
  type PtqMethod,
} from '../src/lib/config/names.ts';
import { configValue, configValues, parseCliOrExit } from '../src/cli/options.ts';
import { BENCH_PTQ_CLI } from './cli-specs.ts';

const cli = parseCliOrExit(BENCH_PTQ_CLI);
const all = <T>(name: string) => configValues(cli, name) as T[];
const methods = all<PtqMethod>('ptq');
const inputs = all<PtqInputs>('ptqInputs');
const ranges = all<PtqActRanges>('ptqActRanges');
const engineKind = cli.values.engine as 'wasm' | 'node';
const dataset = await loadImageFolder(configValue(cli, 'dataset') as string, cli.values.labels as string);
const calib = configValue(cli, 'calib') as number;
const evalCount = configValue(cli, 'eval') as number | 'rest';
const evalN = evalCount === 'rest' ? dataset.items.length - calib : evalCount;
const bn = all<boolean>('bnReestimate');
const configs: ExperimentConfig[] = [];
const seen = new Set<string>();
for (const aBits of all<number>('aBits'))
  for (const wBits of all<number>('wBits'))
    for (const ptq of methods)
      for (const ptqIters of ptq === 'none' || ptq === 'gptq' ? [DEFAULT_PTQ_ITERS] : all<number>('ptqIters'))
        for (const ptqActRanges of ptq === 'none' || ptq === 'gptq' ? (['auto'] as const) : ranges)
          for (const ptqDrop of ptq === 'qdrop' ? all<number>('ptqDrop') : [50])
            for (const ptqInputs of ptq === 'none' ? inputs.slice(0, 1) : inputs)
              for (const bnReestimate of bn) {
                const cfg = resolveConfig({
                  backend: 'academic',
                  wBits,
                  aBits,
                  ptq,
                  ptqIters,
                  ptqActRanges,
                  ptqDrop,
                  ptqInputs,
                  bnReestimate,
                  calib,
                  eval: evalN,
                  seed: 0,
                });
                // 'auto' and 'learned' are the same run for BRECQ and QDrop
                const key = JSON.stringify({ ...cfg, ptqActRanges: learnsActivationRanges(cfg) });
                if (!seen.has(key)) configs.push(cfg);
                seen.add(key);
              }

const engine = await createNodeEngine(engineKind, cli.values.threads as number | undefined);
process.stderr.write(
  `MobileNet-V2, Academic, ${calib} calibration / ${evalN} evaluation images, layer inputs ${inputs.join(',')}, engine ${engine.description}\n`,
);
const modelBytes = new Uint8Array(readFileSync(configValue(cli, 'model') as string));
const base = parseModel(modelBytes);
const raw = {
  engine,
  modelBytes,
  model: { id: 'mobilenet-v2', label: 'MobileNet-V2', preprocess: TORCHVISION_SPEC, classes: 1000 },
  dataset,
  cropStore: new DiskCropStore(),
};
const { inputs: runInputs, tuning } = resolveModelInput(base, raw, DEFAULT_TUNING);
let last = '';
const onProgress = (p: { stage: string; message: string }) => {
  const head = p.message.split(/[,:]/)[0];
  if (head !== last) process.stderr.write(`[${p.stage}] ${p.message}\n`);
  last = head;
};
const opts = { tuning, onProgress };
// every config here shares calib/eval/seed/foldBn: one prepared group (FP32 evaluation, statistics)
const group = await prepareGroup(base, configs, runInputs, opts);

interface Row {
  cfg: ExperimentConfig;
  top1: number;
  fp32: number;
  ptq?: PtqReport;
  seconds: number;
}
const rows: Row[] = [];
for (const cfg of configs) {
  const t0 = performance.now();
  const rtn = quantizeWeights(group.graph, group.points, cfg);
  const calibrated = quantizeActivations(group.points, group.stats, cfg);
  let weights = rtn;
  let learned: ActivationQuant[] | undefined;
  let ptq: PtqReport | undefined;
  if (cfg.ptq !== 'none') {
    const out = await reconstructConfig(
      {
        engine,
        graph: group.graph,
        points: group.points,
        weights: rtn,
        activations: calibrated,
        spec: runInputs.model.preprocess,
        calibCrops: group.calibCrops,
        batchSize: 4,
        shared: group.stageShared,
        onProgress: (message) => onProgress({ stage: 'quantize', message }),
      },
      cfg,
    );
    weights = out.weights;
    learned = out.activations;
    ptq = out.report;
  }
  const top1 = (await runConfig(engine, group, cfg, runInputs, weights, { ...opts, activations: learned })).quant.top1;
  const row = { cfg, top1, fp32: group.fp32.top1Hits / group.fp32.n, ptq, seconds: (performance.now() - t0) / 1000 };
  rows.push(row);
  process.stderr.write(`${label(cfg)} W${cfg.wBits}A${cfg.aBits}: top-1 ${(100 * top1).toFixed(2)} %\n`);
  if (cli.values.units && ptq) process.stdout.write(`\n${label(cfg)} W${cfg.wBits}A${cfg.aBits}\n${ptqTable(ptq)}\n`);
}

function label(c: ExperimentConfig): string {
  if (c.ptq === 'none') return 'round-to-nearest';
  const name = PTQ_LABEL[c.ptq];
  const parts = [
    c.ptq === 'gptq' ? name : `${name} (${c.ptqIters} it)`,
    c.ptq !== 'gptq' ? (learnsActivationRanges(c) ? 'learned ranges' : 'calibrated ranges') : '',
    c.ptq === 'qdrop' && c.ptqDrop !== 50 ? `drop ${c.ptqDrop} %` : '',
    `${c.ptqInputs} inputs`,
    c.bnReestimate ? '+ BN re-estimation' : '',
  ];
  return parts.filter(Boolean).join(', ');
}

process.stdout.write(`\nFP32 top-1 ${(100 * rows[0].fp32).toFixed(2)}%\n`);
process.stdout.write(
  `${table(
    ['method', 'bits', 'top-1 %', 'passes s', 'solve s', 'PTQ s', 'config s'],
    rows.map((r) => [
      label(r.cfg),
      `W${r.cfg.wBits}A${r.cfg.aBits}`,
      (100 * r.top1).toFixed(2),
      r.ptq ? r.ptq.gramSeconds.toFixed(1) : '-',
      r.ptq ? r.ptq.solveSeconds.toFixed(1) : '-',
      r.ptq ? (r.ptq.gramSeconds + r.ptq.solveSeconds).toFixed(1) : '-',
      r.seconds.toFixed(1),
    ]),
  )}\n`,
);
process.stdout.write(
  "passes s = Gram matrices (AdaRound/GPTQ; with fp32 inputs shared by every config and counted in each row) or the forward passes that gather each unit's inputs and targets (BRECQ, QDrop, AdaRound with learned ranges); solve s = the optimisation; config s = reconstruction and evaluation of the config (decoding, FP32 evaluation and calibration are shared and not counted); the machine load at the time inflates all of them.\n",
);
