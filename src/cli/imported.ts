/**
 * `npm run bench` on quantized models made by other tools (src/lib/imported):
 * - `--model Q.onnx` (a QDQ or QOperator file): evaluated as it is on the config's
 *   evaluation images, its per-layer quantization printed (`--analyze`: every parameter),
 *   the JSON record's `imported` field;
 * - `--float-parent P.onnx` adds the parent's FP32 top-1, the agreement of the file with it,
 *   the per-layer comparison and the scheme re-simulated on the parent (`resimulated`);
 * - `--model P.onnx --imported-scheme Q.onnx`: the configs re-simulate Q's scheme on P,
 *   every field not given on the command line taken from the scheme, so one flag changes
 *   one thing (`--a-observer mse`: the imported weights with calibrated activations).
 * Printing and records only; the runs are src/lib/pipeline/imported.ts's and the pipeline's.
 */
import type { ExperimentConfig } from '../lib/config/types.ts';
import { QpError } from '../lib/util/errors.ts';
import type { Graph } from '../lib/onnx/ir.ts';
import { parseModel } from '../lib/onnx/model.ts';
import { sha256Hex, sniffOnnx } from '../lib/models/identify.ts';
import type { ModelSpec, ProgressFn, RunInputs } from '../lib/experiment/types.ts';
import { comparisonTable } from '../lib/imported/compare.ts';
import { type ImportedPair, pairWithParent, quantizedInfo } from '../lib/imported/pair.ts';
import { readImported } from '../lib/imported/read.ts';
import type { ImportedScheme } from '../lib/imported/resimulate.ts';
import { importedTable } from '../lib/imported/table.ts';
import { runAgainstParent, runAsIs } from '../lib/pipeline/imported.ts';
import type { BenchArgs } from './args.ts';
import { cliLink, type CliLinkInputs } from './links.ts';

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/** Reads, parses and pairs the quantized file of --imported-scheme with the float --model. */
export function schemeFromFile(bytes: Uint8Array, path: string, parent: Graph, sha256: string): ImportedPair {
  sniffOnnx(bytes, path);
  const imported = readImported(parseModel(bytes));
  if (imported.format === 'float')
    throw new QpError(
      'ARG_INVALID',
      `--imported-scheme "${path}" holds no quantization (no QuantizeLinear/DequantizeLinear or QLinear ops); give the quantized model.`,
    );
  return pairWithParent(imported, parent, sha256);
}

/**
 * A config that re-simulates `scheme`: the scheme's fields where the command line gave none
 * (`given`: the config fields it gave), the rest as parsed.
 */
export function withScheme(c: ExperimentConfig, scheme: ImportedScheme, given: ReadonlySet<string>): ExperimentConfig {
  const out: Record<string, unknown> = { ...c, importedScheme: scheme.id };
  for (const [k, v] of Object.entries(scheme.fields)) {
    if (k === 'placement') {
      const p = { ...c.placement };
      for (const [rule, on] of Object.entries(v as ExperimentConfig['placement']))
        if (!given.has(`placement.${rule}`)) p[rule as keyof typeof p] = on;
      out.placement = p;
    } else if (k !== 'importedScheme' && !given.has(k)) out[k] = v;
  }
  return out as ExperimentConfig;
}

export interface ImportedBench {
  args: BenchArgs;
  /** the quantized --model */
  bytes: Uint8Array;
  graph: Graph;
  spec: ModelSpec;
  /** its config (data split, seed) with model and dataset ids */
  config: ExperimentConfig;
  inputs: Omit<RunInputs, 'modelBytes' | 'model'>;
  /** reads --float-parent and names it like --model (bench.ts cliModel) */
  parentModel: (bytes: Uint8Array, graph: Graph) => Promise<ModelSpec>;
  readInput: (path: string, what: string) => Promise<Uint8Array>;
  link: CliLinkInputs;
  write: (text: string) => void;
  progress: { onProgress?: ProgressFn; evalBatch?: number };
}

/** What `--model Q.onnx [--float-parent P.onnx]` prints and records (see module header). */
export async function benchImported(b: ImportedBench): Promise<Record<string, unknown>> {
  const { args, write } = b;
  const imported = readImported(b.graph);
  const sha256 = await sha256Hex(b.bytes);
  let parent: { bytes: Uint8Array; graph: Graph; spec: ModelSpec } | undefined;
  if (args.floatParent) {
    const bytes = await b.readInput(args.floatParent, 'Float parent');
    sniffOnnx(bytes, args.floatParent);
    const graph = parseModel(bytes);
    parent = { bytes, graph, spec: await b.parentModel(bytes, graph) };
  }
  // the file is evaluated with its parent's preprocessing when there is one (it was made from it)
  const spec = parent ? { ...b.spec, preprocess: parent.spec.preprocess } : b.spec;
  const asIs = await runAsIs({ ...b.inputs, modelBytes: b.bytes, model: spec }, b.config, b.progress);
  const info = quantizedInfo(imported);
  write(`\n${importedTable(imported, { full: !!args.analyze })}\n`);
  write(
    `\nImported ${imported.format === 'qoperator' ? 'QOperator' : 'QDQ'} model as it is (${asIs.images.eval} evaluation images, engine ${b.inputs.engine.description}): top-1 ${pct(asIs.accuracy.top1)}, top-5 ${pct(asIs.accuracy.top5)}\n`,
  );
  const record: Record<string, unknown> = {
    model: b.config.model,
    dataset: b.config.dataset,
    config: b.config,
    images: asIs.images,
    engine: b.inputs.engine.description,
    imported: { ...info, ...asIs.accuracy, sha256 },
  };
  if (!parent) return record;

  const pair = pairWithParent(imported, parent.graph, sha256);
  const { match, scheme } = pair;
  write(
    `Matched ${match.layers.length} layer(s) with the float parent (${match.unmatchedImported.length} imported, ${match.unmatchedParent.length} parent layer(s) unmatched${match.unmatchedImported.length ? `: ${match.unmatchedImported.slice(0, 5).join(', ')}` : ''}); ${scheme.unmatched.activations.length} quantizer(s) without a parent tensor\n`,
  );
  const base = { ...b.config, model: parent.spec.id };
  const out = await runAgainstParent(
    { ...b.inputs, modelBytes: parent.bytes, model: parent.spec },
    base,
    { bytes: b.bytes, imported, pair, asIs },
    { ...b.progress, analysisImages: args.analyze },
  );
  const re = out.resimulated;
  const delta = 100 * (re.quant.top1 - asIs.accuracy.top1);
  write(
    [
      `FP32 parent: top-1 ${pct(out.fp32.top1)}, top-5 ${pct(out.fp32.top5)}; the imported model agrees with it on ${pct(out.agreement)} of top-1 decisions`,
      `Imported scheme re-simulated on the parent: top-1 ${pct(re.quant.top1)} (${delta >= 0 ? '+' : ''}${delta.toFixed(2)} points against the file), top-5 ${pct(re.quant.top5)}; same top-1 decision as the file on ${pct(out.resimulatedAgreement)} of images`,
      `Re-simulate it yourself: npm run bench -- --model ${args.floatParent} --data ${args.data} --calib ${b.config.calib} --eval ${b.config.eval} --seed ${b.config.seed} --imported-scheme ${args.model} (add e.g. --a-observer mse to change one thing)`,
      '',
      comparisonTable(out.comparison),
      '',
    ].join('\n'),
  );
  const minCodes = Math.min(...scheme.layers.map((l) => l.codeAgreement));
  if (scheme.layers.length && minCodes < 1)
    write(
      `note: some weight codes differ from the parent's weights rounded on the imported grid (lowest ${pct(minCodes)} of a layer): the exporter changed the weights (e.g. AdaRound), which the re-simulation rounds anew.\n`,
    );
  const parentLink = {
    ...b.link,
    modelPath: args.floatParent!,
    modelSha256: await sha256Hex(parent.bytes),
    modelId: parent.spec.id,
  };
  return {
    ...record,
    parent: { model: parent.spec.id, path: args.floatParent },
    fp32: out.fp32,
    agreement: out.agreement,
    match: {
      layers: match.layers,
      unmatchedImported: match.unmatchedImported,
      unmatchedParent: match.unmatchedParent,
      unmatchedActivations: scheme.unmatched.activations,
    },
    comparison: {
      images: out.comparison.images,
      tapAgreement: out.comparison.tapAgreement,
      layers: out.comparison.layers,
      analysis: out.comparison.analysis,
    },
    resimulated: {
      ...re.quant,
      config: re.config,
      configHash: re.configHash,
      agreementWithFile: out.resimulatedAgreement,
      url: cliLink(re.config, parentLink),
    },
  };
}
