/**
 * `npx tsx scripts/ort-style-models.ts --model FILE --data DIR --out DIR [--calib N] [--seed N]`:
 * writes the two quantized forms of a float model that onnxruntime's static quantizer
 * writes (tests/support/imported-fixtures.ts): `ort-qdq.onnx` (QDQ: uint8 asymmetric
 * activations with min/max ranges over the calibration images of the seeded split, int8
 * per-channel weights in [-127, 127], int32 biases) and `ort-qoperator.onnx` (its
 * QOperator conversion: QLinearConv, QGemm, QLinearAdd, QLinearGlobalAveragePool). They
 * are inputs for `npm run bench -- --model DIR/ort-qdq.onnx --float-parent FILE …`
 * (docs/imported-models.md). Writes only into --out; bad arguments: one line, exit 2.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCli, type CliSpec } from '../src/cli/options.ts';
import { resolveConfig } from '../src/lib/config/resolve.ts';
import { DiskCropStore, loadImageFolder } from '../src/lib/data/dataset.node.ts';
import { createNodeEngine } from '../src/lib/engine/node.ts';
import { loadSplitCrops, resolveModelInput, DEFAULT_TUNING } from '../src/lib/experiment/inputs.ts';
import { identifyModel, sha256Hex } from '../src/lib/models/identify.ts';
import { validateClassifier } from '../src/lib/models/validate.ts';
import { foldBatchNorm } from '../src/lib/onnx/fold-bn.ts';
import { parseModel, serializeModel } from '../src/lib/onnx/model.ts';
import { toErrorInfo } from '../src/lib/util/errors.ts';
import { minMaxRanges, ortStyleQdq, qdqToQOperator } from '../tests/support/imported-fixtures.ts';

const SPEC: CliSpec = {
  command: 'npx tsx scripts/ort-style-models.ts',
  config: ['model', 'dataset', 'calib', 'seed'],
  run: ['engine', 'threads'],
  extra: { out: { flag: 'out', arg: 'DIR', type: { kind: 'path' }, help: 'folder the two models are written to' } },
  required: ['model', 'dataset', 'out'],
};

try {
  const { config, values } = parseCli(SPEC, process.argv.slice(2));
  const given = (name: string) => [...config].find(([f]) => f.name === name)?.[1][0];
  const modelPath = given('model') as string;
  const bytes = new Uint8Array(readFileSync(modelPath));
  const graph = parseModel(bytes);
  const dataset = await loadImageFolder(given('dataset') as string);
  const { spec } = await identifyModel(bytes, graph, validateClassifier(graph).classes);
  const cfg = resolveConfig({
    model: spec.id,
    calib: (given('calib') as number | undefined) ?? 128,
    seed: (given('seed') as number | undefined) ?? 0,
    eval: 1,
  });
  const engine = await createNodeEngine(values.engine as 'wasm' | 'node', values.threads as number | undefined);
  const { inputs } = resolveModelInput(
    graph,
    { engine, modelBytes: bytes, model: spec, dataset, cropStore: new DiskCropStore() },
    DEFAULT_TUNING,
  );
  const { calibCrops } = await loadSplitCrops(inputs, cfg);
  const parent = foldBatchNorm(graph).graph;
  // min/max of every tensor over the calibration images: onnxruntime's default calibration
  const ranges = await minMaxRanges(engine, parent, calibCrops, inputs.model.preprocess);
  const qdq = ortStyleQdq(parent, ranges);
  const out = values.out as string;
  mkdirSync(out, { recursive: true });
  for (const [name, g] of [
    ['ort-qdq.onnx', qdq],
    ['ort-qoperator.onnx', qdqToQOperator(qdq)],
  ] as const) {
    const b = serializeModel(g);
    writeFileSync(join(out, name), b);
    console.log(`${join(out, name)}  ${b.byteLength} bytes  sha256 ${await sha256Hex(b)}`);
  }
  console.log(`(calibrated on ${calibCrops.length} images of ${dataset.name}, seed ${cfg.seed})`);
} catch (e) {
  const info = toErrorInfo(e);
  process.stderr.write(
    info.message.startsWith('usage:') ? `${info.message}\n` : `error [${info.code}]: ${info.message}\n`,
  );
  process.exit(2);
}
