/**
 * `npm run bench`: the headless front door. Loads a model and an image folder from
 * disk and runs the same pipeline as the browser worker, printing an MQBench-style
 * table (stdout) and progress (stderr). Errors: one line, non-zero exit.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { QpError, toErrorInfo } from '../lib/protocol/errors.ts';
import { DiskCropStore, loadImageFolder } from '../lib/data/dataset.node.ts';
import { EFFICIENTNET_LITE_SPEC, TORCHVISION_SPEC } from '../lib/data/preprocess.ts';
import { createNodeEngine } from '../lib/engine/node.ts';
import { configLabel, fixesAndAnalysisSummary, layersTable, resultsTable, worstLayers } from '../lib/experiment/report.ts';
import { runExperiments } from '../lib/pipeline/run.ts';
import type { ModelSpec, Progress } from '../lib/experiment/types.ts';
import type { Graph } from '../lib/onnx/ir.ts';
import { parseModel } from '../lib/onnx/model.ts';
import { identifyModel, sha256Hex, sniffOnnx } from '../lib/models/identify.ts';
import { validateClassifier } from '../lib/models/validate.ts';
import { parseBenchArgs, withImageCount } from './args.ts';
import { fingerprintOf } from '../lib/data/fingerprint.ts';
import { cliLink } from './links.ts';

async function readInput(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new QpError('FILE_NOT_FOUND', `${what} "${path}" does not exist.`);
    if (code === 'EISDIR') throw new QpError('FILE_NOT_FOUND', `${what} "${path}" is a folder; give the .onnx file.`);
    throw new QpError('FILE_NOT_FOUND', `${what} "${path}" could not be read (${code ?? (e as Error).message}).`);
  }
}

/**
 * The CLI's model: sniffed, parsed, validated against the data set's labels, and named
 * by src/lib/models/identify.ts — the same id (registry id or `sha256:<full hex>`) the
 * browser gives the same file. `--preprocess` overrides the registry's preprocessing.
 */
export async function cliModel(
  modelBytes: Uint8Array,
  graph: Graph,
  labels: number,
  args: { preprocess?: string; inputSize?: number },
): Promise<ModelSpec> {
  const info = validateClassifier(graph, { labels, inputSize: args.inputSize });
  const preprocess = args.preprocess === 'efficientnet-lite' ? EFFICIENTNET_LITE_SPEC : args.preprocess === 'torchvision' ? TORCHVISION_SPEC : undefined;
  return (await identifyModel(modelBytes, graph, info.classes, { preprocess, inputSize: args.inputSize })).spec;
}

/** Analysis images of the pipeline's default (experiment/run.ts) when --analyze is on. */
const CLI_ANALYSIS_IMAGES = 64;

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

export async function main(argv: string[]): Promise<number> {
  try {
    const args = parseBenchArgs(argv);
    const modelBytes = await readInput(args.model, 'Model file');
    sniffOnnx(modelBytes, args.model);
    const graph = parseModel(modelBytes);
    const dataset = await loadImageFolder(args.data, args.labels);
    const model = await cliModel(modelBytes, graph, dataset.classes, args);
    const n = dataset.items.length;
    const configs = args.configs.map((c) => withImageCount({ ...c, model: model.id, dataset: dataset.name }, n));
    const starved = configs.find((c) => c.eval < 1);
    if (starved) throw new QpError('DATA_TOO_FEW_IMAGES', `The folder has ${n} images; with --calib ${starved.calib} none are left to evaluate. Lower --calib.`);
    const engine = await createNodeEngine(args.engine, args.threads);
    process.stderr.write(`model ${model.id} (${model.label}), ${n} images, ${configs.length} config(s), engine ${engine.description}\n`);
    const results = await runExperiments(configs, { engine, modelBytes, model, dataset, cropStore: new DiskCropStore() }, { onProgress: progressPrinter(), analyze: args.analyze });
    const linkInputs = {
      modelPath: args.model,
      modelSha256: await sha256Hex(modelBytes),
      modelId: model.id,
      dataDir: args.data,
      fingerprint: await fingerprintOf(dataset),
      analyze: args.analyze ? CLI_ANALYSIS_IMAGES : undefined,
    };
    const records = results.map((r) => ({ ...r, url: cliLink(r.config, linkInputs) }));
    process.stdout.write(`\n${resultsTable(results)}\n`);
    if (args.links) {
      process.stdout.write('\nLinks (open in the app after its address, e.g. http://localhost:5173/#v=1&…):\n');
      for (const r of records) process.stdout.write(`${configLabel(r)}  ${r.url}\n`);
    }
    const summary = fixesAndAnalysisSummary(results);
    if (summary) process.stdout.write(`${summary}\n`);
    for (const r of results) {
      if (!r.layers) continue;
      process.stdout.write(`\nPer-layer error, ${configLabel(r)} (SQNR in dB on ${r.analysis?.images ?? '?'} evaluation images; drift = quantized vs FP32 output statistics):\n${layersTable(r.layers)}\n`);
      process.stdout.write(`worst layers (lowest standalone SQNR): ${worstLayers(r.layers).map((l) => `${l.name} (${l.standalone.sqnrDb.toFixed(1)} dB)`).join(', ')}\n`);
    }
    if (results[0].images.skipped) process.stdout.write(`(${results[0].images.skipped} unreadable image(s) skipped)\n`);
    if (model.label.startsWith('SYNTHETIC')) {
      process.stdout.write('note: this model has SYNTHETIC seeded (untrained) weights: its accuracy figures mean nothing; use it for graph handling and timing only.\n');
    }
    if (results[0].unquantizedOps.length) process.stdout.write(`ops left in float: ${results[0].unquantizedOps.join(', ')}\n`);
    if (args.json) await writeFile(args.json, JSON.stringify(records, null, 2));
    return 0;
  } catch (e) {
    const info = toErrorInfo(e);
    if (info.code === 'MODEL_INPUT_SIZE_UNKNOWN') info.message += ' Pass it with --input-size N.';
    process.stderr.write(info.code === 'ARG_INVALID' && info.message.startsWith('usage:') ? `${info.message}\n` : `error [${info.code}]: ${info.message}\n`);
    return info.userError ? 2 : 1;
  }
}
