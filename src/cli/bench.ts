/**
 * `npm run bench`: the headless front door. Loads a model and an image folder from
 * disk and runs the same pipeline as the browser worker, printing an MQBench-style
 * table (stdout) and progress (stderr). Errors: one line, non-zero exit.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { QpError, toErrorInfo } from '../lib/protocol/errors.ts';
import { DiskCropStore, loadImageFolder } from '../lib/data/dataset.node.ts';
import { EFFICIENTNET_LITE_SPEC, TORCHVISION_SPEC } from '../lib/data/preprocess.ts';
import { createNodeEngine } from '../lib/engine/node.ts';
import { configLabel, fixesAndAnalysisSummary, layersTable, ptqTable, resultsTable, worstLayers } from '../lib/experiment/report.ts';
import { runExperiments } from '../lib/experiment/run.ts';
import type { ModelSpec, Progress } from '../lib/experiment/types.ts';
import type { Graph } from '../lib/onnx/ir.ts';
import { parseModel } from '../lib/onnx/model.ts';
import { findModelBySha256 } from '../lib/models/registry.ts';
import { validateClassifier } from '../lib/models/validate.ts';
import { parseBenchArgs } from './args.ts';

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
 * Model identity: the registry id when the bytes match a known file, else its hash. Models
 * written by `npm run make-models` carry metadata synthetic=true and are labelled as such.
 */
function identifyModel(bytes: Uint8Array, graph: Graph, classes: number, preprocess?: string, inputSize?: number): ModelSpec {
  const sha = createHash('sha256').update(bytes).digest('hex');
  const entry = findModelBySha256(sha);
  const spec = preprocess === 'efficientnet-lite' ? EFFICIENTNET_LITE_SPEC : preprocess === 'torchvision' ? TORCHVISION_SPEC : (entry?.preprocess ?? TORCHVISION_SPEC);
  const meta = (k: string) => graph.meta.metadataProps.find((p) => p.key === k)?.value;
  const label = entry?.label ?? (meta('synthetic') === 'true' ? `SYNTHETIC ${meta('architecture') ?? 'model'}` : 'user model');
  return { id: entry?.id ?? `sha256:${sha.slice(0, 16)}`, label, preprocess: spec, classes, inputSize };
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

export async function main(argv: string[]): Promise<number> {
  try {
    const args = parseBenchArgs(argv);
    const modelBytes = await readInput(args.model, 'Model file');
    const graph = parseModel(modelBytes);
    const dataset = await loadImageFolder(args.data, args.labels);
    const info = validateClassifier(graph, { labels: dataset.classes, inputSize: args.inputSize });
    const model = identifyModel(modelBytes, graph, info.classes, args.preprocess, args.inputSize);
    const n = dataset.items.length;
    const configs = args.configs.map((c) => ({
      ...c,
      model: model.id,
      dataset: dataset.name,
      eval: c.eval === -1 ? n - c.calib : c.eval,
    }));
    if (configs[0].eval < 1) throw new QpError('DATA_TOO_FEW_IMAGES', `The folder has ${n} images; with --calib ${configs[0].calib} none are left to evaluate. Lower --calib.`);
    const engine = await createNodeEngine(args.engine, args.threads);
    process.stderr.write(`model ${model.id} (${model.label}), ${n} images, ${configs.length} config(s), engine ${engine.description}\n`);
    const results = await runExperiments(configs, { engine, modelBytes, model, dataset, cropStore: new DiskCropStore() }, { onProgress: progressPrinter(), analyze: args.analyze });
    process.stdout.write(`\n${resultsTable(results)}\n`);
    const summary = fixesAndAnalysisSummary(results);
    if (summary) process.stdout.write(`${summary}\n`);
    for (const r of results) {
      if (!r.ptq) continue;
      process.stdout.write(`\nReconstruction, ${configLabel(r)} (error = ‖ΔW·X‖²/‖W·X‖² on the calibration inputs; Gram matrices ${r.ptq.gramSeconds.toFixed(1)} s, solving ${r.ptq.solveSeconds.toFixed(1)} s):\n${ptqTable(r.ptq)}\n`);
    }
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
    if (args.json) await writeFile(args.json, JSON.stringify(results, null, 2));
    return 0;
  } catch (e) {
    const info = toErrorInfo(e);
    if (info.code === 'MODEL_INPUT_SIZE_UNKNOWN') info.message += ' Pass it with --input-size N.';
    process.stderr.write(info.code === 'ARG_INVALID' && info.message.startsWith('usage:') ? `${info.message}\n` : `error [${info.code}]: ${info.message}\n`);
    return info.userError ? 2 : 1;
  }
}
