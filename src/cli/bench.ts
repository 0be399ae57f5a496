/**
 * `npm run bench`: the headless front door. Loads a model and an image folder from
 * disk and runs the same pipeline as the browser worker, printing an MQBench-style
 * table (stdout) and progress (stderr). Errors: one line, non-zero exit.
 */
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { QpError, toErrorInfo } from '../lib/util/errors.ts';
import { DiskCropStore } from '../lib/data/dataset.node.ts';
import { createNodeEngine } from '../lib/engine/node.ts';
import {
  configLabel,
  fixesAndAnalysisSummary,
  layersTable,
  ptqTable,
  resultsTable,
  worstLayers,
} from '../lib/experiment/report.ts';
import { runPipeline } from '../lib/pipeline/run.ts';
import { loadSplitCrops } from '../lib/experiment/inputs.ts';
import type { ExperimentResult, ModelSpec, Progress, RunInputs } from '../lib/experiment/types.ts';
import type { ExperimentConfig } from '../lib/config/types.ts';
import { measureSensitivity } from '../lib/pipeline/sensitivity.ts';
import { keepMostSensitive, modelWeightBits, rankBySensitivity } from '../lib/analysis/sensitivity.ts';
import type { Graph } from '../lib/onnx/ir.ts';
import { parseModel } from '../lib/onnx/model.ts';
import { identifyModel, sha256Hex } from '../lib/models/identify.ts';
import { validateClassifier } from '../lib/models/validate.ts';
import { parseBenchArgs, withImageCount, type BenchArgs } from './args.ts';
import { planJobs, runJobs, withoutFlags } from './jobs.ts';
import { ExportWriter, exportSummary } from './export.ts';
import { appendJsonl, mergeJsonl, readJsonl, repairJsonl, selectShard, splitSweepArgs } from './sweep.ts';
import { configHash } from '../lib/config/hash.ts';
import { fingerprintOf } from '../lib/data/fingerprint.ts';
import { cliLink } from './links.ts';
import { cliInputs, readInput, type CliInputs } from './inputs.ts';
import { StageTimer } from '../lib/experiment/stage-timer.ts';
import { isQuantizedGraph } from '../lib/imported/read.ts';
import { benchImported, schemeFromFile, withScheme } from './imported.ts';
import { benchSearch } from './search.ts';
import type { ImportedScheme } from '../lib/imported/resimulate.ts';
import { CliHelp, reportCliError } from './options.ts';
import { DeployCollector, deployTable } from './deploy.ts';

/**
 * The CLI's model: parsed, validated against the data set's labels, and named by
 * src/lib/models/identify.ts — the same id (registry id or `sha256:<full hex>`) the browser
 * gives the same file. The configs' `--input-size` serves graphs with a symbolic image size
 * (their preprocessing, `--preprocess`, is applied by the pipeline per config).
 */
export async function cliModel(
  modelBytes: Uint8Array,
  graph: Graph,
  labels: number,
  inputSize: number,
): Promise<ModelSpec> {
  const info = validateClassifier(graph, { labels, inputSize: inputSize > 0 ? inputSize : undefined });
  return (await identifyModel(modelBytes, graph, info.classes)).spec;
}

function progressPrinter() {
  let last = 0;
  let lastStage = '';
  return (p: Progress) => {
    const now = Date.now();
    if (p.stage === lastStage && now - last < 1000 && p.done < p.total) return;
    last = now;
    lastStage = p.stage;
    const eta = p.etaSeconds !== undefined && p.done < p.total ? `, ~${Math.ceil(p.etaSeconds)} s left` : '';
    process.stderr.write(`[${p.stage}] ${p.message}${eta}\n`);
  };
}

/**
 * --keep-sensitive: one sensitivity pass per distinct config, then one config per k
 * with the k most sensitive layers' weights at 8 bits. Prints the ranking.
 */
async function keepSensitiveConfigs(
  configs: ExperimentConfig[],
  inputs: RunInputs,
  ks: number[],
  images: number,
): Promise<{
  configs: ExperimentConfig[];
  params: Map<ExperimentConfig, { layer: string; params: number; bits: number }[]>;
}> {
  const out: ExperimentConfig[] = [];
  const params = new Map<ExperimentConfig, { layer: string; params: number; bits: number }[]>();
  for (const cfg of configs) {
    const s = await measureSensitivity(cfg, inputs, { images, onProgress: progressPrinter() });
    const ranked = rankBySensitivity(s.layers);
    process.stdout.write(
      `\nSensitivity of ${cfg.backend} W${cfg.wBits} weights, one layer at a time (${s.images} evaluation images, FP32 ${(100 * s.fp32Top1).toFixed(1)}%, ${s.seconds.toFixed(0)} s):\n`,
    );
    process.stdout.write(
      `${ranked
        .slice(0, Math.max(10, ...ks))
        .map(
          (l, i) =>
            `${String(i + 1).padStart(3)}. ${l.layer.padEnd(12)} params ${String(l.params).padStart(8)}  top-1 ${(100 * l.top1).toFixed(1).padStart(5)}%  disagreement ${(100 * l.disagreement).toFixed(1).padStart(5)}%`,
        )
        .join('\n')}\n`,
    );
    for (const k of ks) {
      const c = { ...cfg, layerBits: { ...cfg.layerBits, ...keepMostSensitive(ranked, k, Math.max(8, cfg.wBits)) } };
      params.set(c, s.weights);
      out.push(c);
    }
  }
  return { configs: out, params };
}

/** Size versus top-1 of the keep-k choices (the data of the mixed-precision plot). */
function mixedPrecisionTable(
  results: ExperimentResult[],
  params: Map<ExperimentConfig, { layer: string; params: number; bits: number }[]>,
): string {
  const rows = results.map((r) => {
    const layers = params.get(r.config) ?? [];
    const bits = modelWeightBits(layers, r.config.wBits, r.config.layerBits);
    const kept = Object.keys(r.config.layerBits);
    return `${String(kept.length).padStart(3)}  ${(bits / 8 / 2 ** 20).toFixed(3).padStart(8)} MiB  top-1 ${(100 * r.quant.top1).toFixed(1).padStart(5)}%  ${kept.join(',') || '-'}`;
  });
  return `Mixed precision (k layers kept at 8 bits; weight size = Σ params × bits):\n  k      size           top-1   layers\n${rows.join('\n')}`;
}

type LinkInputs = Parameters<typeof cliLink>[1];

/** Everything printed after a sweep (tables, links, reconstruction and per-layer sections) and --json. */
async function printReport(
  results: ExperimentResult[],
  args: BenchArgs,
  linkInputs: LinkInputs,
  model: ModelSpec,
  deploy?: DeployCollector,
): Promise<void> {
  const records = results.map((r) => ({
    ...r,
    url: cliLink(r.config, linkInputs),
    ...(deploy ? { deployed: deploy.byHash.get(r.configHash)?.field ?? null } : {}),
  }));
  process.stdout.write(`\n${resultsTable(results)}\n`);
  if (deploy) {
    const rows = deploy.rows(results.map((r) => r.configHash));
    process.stdout.write(
      `\nSimulated versus deployed on onnxruntime's integer kernels (same evaluation images; layer comparison on ${rows[0]?.deployed.divergenceImages ?? 0} image(s)):\n${rows.length ? deployTable(rows) : '(no configuration could be deployed)'}\n`,
    );
    for (const r of results) {
      const f = deploy.byHash.get(r.configHash)?.field;
      if (f && 'error' in f) process.stdout.write(`${configLabel(r)}: not deployed: ${f.error}\n`);
    }
  }
  if (args.links) {
    process.stdout.write('\nLinks (open in the app after its address, e.g. http://localhost:5173/#v=1&…):\n');
    for (const r of records) process.stdout.write(`${configLabel(r)}  ${r.url}\n`);
  }
  const summary = fixesAndAnalysisSummary(results);
  if (summary) process.stdout.write(`${summary}\n`);
  for (const r of results) {
    if (!r.ptq) continue;
    process.stdout.write(
      `\nReconstruction, ${configLabel(r)} (error = ‖ΔW·X‖²/‖W·X‖² on the calibration inputs; Gram matrices ${r.ptq.gramSeconds.toFixed(1)} s, solving ${r.ptq.solveSeconds.toFixed(1)} s):\n${ptqTable(r.ptq)}\n`,
    );
  }
  for (const r of results) {
    if (!r.layers) continue;
    process.stdout.write(
      `\nPer-layer error, ${configLabel(r)} (SQNR in dB on ${r.analysis?.images ?? '?'} evaluation images; drift = quantized vs FP32 output statistics):\n${layersTable(r.layers)}\n`,
    );
    process.stdout.write(
      `worst layers (lowest standalone SQNR): ${worstLayers(r.layers)
        .map((l) => `${l.name} (${l.standalone.sqnrDb.toFixed(1)} dB)`)
        .join(', ')}\n`,
    );
  }
  if (results[0]?.images.skipped) process.stdout.write(`(${results[0].images.skipped} unreadable image(s) skipped)\n`);
  if (model.label.startsWith('SYNTHETIC')) {
    process.stdout.write(
      'note: this model has SYNTHETIC seeded (untrained) weights: its accuracy figures mean nothing; use it for graph handling and timing only.\n',
    );
  }
  if (results[0]?.unquantizedOps.length)
    process.stdout.write(`ops left in float: ${results[0].unquantizedOps.join(', ')}\n`);
  if (args.json) await writeFile(args.json, JSON.stringify(records, null, 2));
}

/**
 * A quantized --model (src/cli/imported.ts): evaluated as it is, its per-layer quantization
 * printed; with --float-parent compared with its parent. One data split: the config flags
 * other than the split's (--calib, --eval, --seed, --preprocess, --input-size) mean nothing here.
 */
async function quantizedModel(
  args: BenchArgs,
  sweep: ReturnType<typeof splitSweepArgs>['sweep'],
  m: { graph: Graph; model: ModelSpec; inputs: CliInputs },
  configs: ExperimentConfig[],
): Promise<number> {
  const refuse = (what: string) => {
    throw new QpError(
      'ARG_INVALID',
      `"${args.model}" is a quantized model, which is evaluated as it is; ${what} To search or sweep with its scheme, run on its float parent with --imported-scheme ${args.model}.`,
    );
  };
  if (args.importedScheme) refuse('--imported-scheme re-simulates a quantized file on a float --model.');
  if (args.maxDrop !== undefined || args.pareto || args.keepSensitive || args.exportDir || args.deploy)
    refuse('--max-drop, --pareto, --keep-sensitive, --export and --deploy work on the quantization of a float model.');
  if (configs.length > 1 || sweep.jsonl || sweep.jobs !== undefined)
    refuse('it runs once (no comma lists, --jobs or --jsonl).');
  const { modelBytes, dataset } = m.inputs;
  // a registry image set: the split's files first
  await m.inputs.prefetch(configs);
  const engine = await createNodeEngine(args.engine, args.threads);
  process.stderr.write(`quantized model ${m.model.id}, ${dataset.items.length} images, engine ${engine.description}\n`);
  const link = {
    modelPath: args.model,
    modelSha256: await sha256Hex(modelBytes),
    modelId: m.model.id,
    dataSource: m.inputs.dataSource,
    fingerprint: await fingerprintOf(dataset),
  };
  const record = await benchImported({
    args,
    bytes: modelBytes,
    graph: m.graph,
    spec: m.model,
    config: configs[0],
    inputs: { engine, dataset, cropStore: new DiskCropStore() },
    parentModel: (bytes, graph) => cliModel(bytes, graph, dataset.classes, configs[0].inputSize),
    readInput,
    link,
    write: (t) => process.stdout.write(t),
    progress: { onProgress: progressPrinter(), evalBatch: args.evalBatch },
  });
  if (args.json) await writeFile(args.json, JSON.stringify([record], null, 2));
  return 0;
}

export interface MainOptions {
  /**
   * The CLI's entry script: with it a sweep may spread over several processes of it
   * (--jobs, cli/jobs.ts). Without it (main called in-process) everything runs here.
   */
  entry?: string;
}

export async function main(argv: string[], opts: MainOptions = {}): Promise<number> {
  let exporter: ExportWriter | undefined;
  const wall = performance.now();
  try {
    const { sweep, rest } = splitSweepArgs(argv);
    if (sweep.merge) {
      const merged = await mergeJsonl(sweep.merge);
      process.stdout.write(
        `${resultsTable(merged)}\n(${merged.length} configuration(s) from ${sweep.merge.length} file(s))\n`,
      );
      return 0;
    }
    const args = parseBenchArgs(rest);
    const inputs = await cliInputs(args);
    const { modelBytes, dataset } = inputs;
    const graph = parseModel(modelBytes);
    const model = await cliModel(modelBytes, graph, dataset.classes, args.configs[0].inputSize);
    const n = dataset.items.length;
    const quantized = isQuantizedGraph(graph);
    let scheme: ImportedScheme | undefined;
    if (args.importedScheme && !quantized) {
      const bytes = await readInput(args.importedScheme, 'Quantized model (--imported-scheme)');
      scheme = schemeFromFile(bytes, args.importedScheme, graph, await sha256Hex(bytes)).scheme;
    }
    const all = selectShard(args.configs, sweep.shard).map((c) => {
      const cfg = withImageCount({ ...c, model: model.id, dataset: dataset.name }, n);
      return scheme ? withScheme(cfg, scheme, args.given) : cfg;
    });
    const starved = all.find((c) => c.eval < 1);
    if (starved)
      throw new QpError(
        'DATA_TOO_FEW_IMAGES',
        `The folder has ${n} images; with --calib ${starved.calib} none are left to evaluate. Lower --calib.`,
      );
    if (quantized) return await quantizedModel(args, sweep, { graph, model, inputs }, all);
    if (args.floatParent)
      throw new QpError(
        'ARG_INVALID',
        `--float-parent goes with a quantized --model, and "${args.model}" holds no quantization. To re-simulate a quantized file on this float model, give it with --imported-scheme.`,
      );
    let configs = all;
    const hashes = await Promise.all(all.map((c) => configHash(c)));
    if (sweep.jsonl) {
      await repairJsonl(sweep.jsonl);
      const done = new Set((await readJsonl(sweep.jsonl)).map((r) => r.configHash));
      configs = all.filter((_, k) => !done.has(hashes[k]));
      if (configs.length < all.length)
        process.stderr.write(
          `${all.length - configs.length} of ${all.length} configuration(s) already in ${sweep.jsonl}: skipped\n`,
        );
      if (configs.length === 0) {
        const have = (await readJsonl(sweep.jsonl)).filter((r) => hashes.includes(r.configHash));
        process.stdout.write(`\n${resultsTable(have)}\n`);
        return 0;
      }
    }
    const cores = availableParallelism();
    const searching = args.maxDrop !== undefined || args.pareto;
    const jobs =
      opts.entry && !args.exportDir && !args.deploy && !args.keepSensitive && !searching
        ? planJobs(sweep.jobs, configs.length, cores)
        : 1;
    if (typeof sweep.jobs === 'number' && sweep.jobs > 1 && jobs === 1) {
      throw new QpError(
        'ARG_INVALID',
        args.exportDir || args.deploy || args.keepSensitive || searching
          ? '--jobs runs one process when --export, --deploy, --keep-sensitive, --max-drop or --pareto is given; drop one of them.'
          : '--jobs needs the bench command (npm run bench).',
      );
    }
    // a registry image set: every split's files first, verified, into the cache folder
    await inputs.prefetch(configs);
    const linkInputs = {
      modelPath: args.model,
      modelSha256: await sha256Hex(modelBytes),
      modelId: model.id,
      dataSource: inputs.dataSource,
      fingerprint: await fingerprintOf(dataset),
      analyze: args.analyze,
    };
    if (jobs > 1) {
      const threadsPerJob = Math.max(1, Math.floor((args.threads ?? Math.min(4, cores)) / jobs));
      process.stderr.write(
        `model ${model.id} (${model.label}), ${n} images, ${configs.length} config(s) in ${jobs} jobs × ${threadsPerJob} engine thread(s) (--jobs 1: one process)\n`,
      );
      // decode once, into the crop cache every job reads
      const t0 = performance.now();
      await loadSplitCrops({ model, dataset, cropStore: new DiskCropStore() }, configs[0], {
        onProgress: (d, t) => d === t && process.stderr.write(`[decode] ${t} crops ready\n`),
      });
      const decode = (performance.now() - t0) / 1000;
      const outcome = await runJobs(
        {
          entry: opts.entry!,
          argv: withoutFlags(rest, ['--threads']),
          jobs,
          threadsPerJob,
          shard: sweep.shard,
          jsonl: sweep.jsonl,
        },
        (l) => process.stderr.write(`${l}\n`),
      );
      const byHash = new Map(outcome.records.map((r) => [r.configHash, r]));
      const results = hashes.map((h) => byHash.get(h)).filter((r): r is ExperimentResult => !!r);
      await printReport(results, args, linkInputs, model);
      const total = (performance.now() - wall) / 1000;
      process.stdout.write(
        `time: ${total.toFixed(1)} s for ${results.length} config(s) in ${jobs} jobs × ${threadsPerJob} thread(s) (decode ${decode.toFixed(1)} s; ${outcome.times.join('; ')})\n`,
      );
      return 0;
    }
    const engine = await createNodeEngine(args.engine, args.threads);
    process.stderr.write(
      `model ${model.id} (${model.label}), ${n} images, ${configs.length} config(s), engine ${engine.description}\n`,
    );
    const runInputs = { engine, modelBytes, model, dataset, cropStore: new DiskCropStore() };
    if (searching) {
      const records = await benchSearch({
        configs,
        inputs: runInputs,
        maxDrop: args.maxDrop,
        prune: !args.noPrune,
        pareto: args.pareto,
        rankImages: args.rankImages,
        paretoPoints: args.paretoPoints,
        scheme,
        link: linkInputs,
        write: (t) => process.stdout.write(t),
        note: progressPrinter(),
      });
      if (args.json) await writeFile(args.json, JSON.stringify(records, null, 2));
      process.stdout.write(`time: ${((performance.now() - wall) / 1000).toFixed(1)} s\n`);
      return 0;
    }
    const keep = args.keepSensitive
      ? await keepSensitiveConfigs(configs, runInputs, args.keepSensitive, args.sensitivity)
      : undefined;
    const runConfigs = keep ? keep.configs : configs;
    if (args.exportDir) exporter = new ExportWriter(args.exportDir, engine);
    const deploy = args.deploy
      ? new DeployCollector(engine, { note: (l) => process.stderr.write(`${l}\n`) })
      : undefined;
    const onQuantized =
      exporter || deploy
        ? async (q: Parameters<NonNullable<typeof exporter>['add']>[0]) => {
            await exporter?.add(q);
            await deploy?.add(q);
          }
        : undefined;
    const timer = new StageTimer();
    const printer = progressPrinter();
    const results = await runPipeline(runConfigs, runInputs, {
      onProgress: (p) => {
        timer.observe(p);
        printer(p);
      },
      analyze: args.analyze ? { images: args.analyze } : undefined,
      evalBatch: args.evalBatch,
      hooks: scheme ? { scheme } : undefined,
      onQuantized,
      onResult: sweep.jsonl
        ? (r) =>
            appendJsonl(
              sweep.jsonl!,
              deploy ? Object.assign({}, r, { deployed: deploy.byHash.get(r.configHash)?.field ?? null }) : r,
            )
        : undefined,
    });
    await exporter?.commit();
    if (keep) process.stdout.write(`\n${mixedPrecisionTable(results, keep.params)}\n`);
    await printReport(results, args, linkInputs, model, deploy);
    const total = timer.finish();
    process.stdout.write(`time: ${total.toFixed(1)} s for ${results.length} config(s) (${timer.summary()})\n`);
    if (exporter && args.exportDir) {
      process.stdout.write(`${exportSummary(args.exportDir, exporter.checks)}\n`);
      const refused = exporter.checks.find((c) => c.qdqError);
      if (refused) {
        process.stderr.write(`error [${refused.qdqError!.code}]: ${refused.qdqError!.message}\n`);
        return 2;
      }
    }
    return 0;
  } catch (e) {
    await exporter?.abort();
    const info = toErrorInfo(e);
    if (info.code === 'MODEL_INPUT_SIZE_UNKNOWN') info.message += ' Pass it with --input-size N.';
    if (e instanceof CliHelp) return reportCliError(e);
    process.stderr.write(`error [${info.code}]: ${info.message}\n`);
    return info.userError ? 2 : 1;
  }
}
