/**
 * `npm run make-models -- --out DIR [--seed N] [--only id,id]`: writes the seeded synthetic
 * stand-ins resnet18.onnx, mobilenet-v2.onnx, efficientnet-lite0.onnx (exact architectures,
 * NOT trained weights) and prints name, parameters, bytes and sha256 of each.
 *
 * Must not: download anything or overwrite files outside DIR. Bad arguments give one line
 * on stderr and exit code 2.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { countParams, SYNTHETIC_BUILDERS } from '../src/lib/models/builders.ts';
import { MODEL_REGISTRY, type ModelId } from '../src/lib/models/registry.ts';
import { parseCliOrExit } from '../src/cli/options.ts';
import { MAKE_MODELS_CLI } from './cli-specs.ts';

const { values } = parseCliOrExit(MAKE_MODELS_CLI);
const out = values.out as string;
const seed = values.seed as number;
const only = (values.only as ModelId[] | undefined) ?? MODEL_REGISTRY.map((e) => e.id);

function fail(msg: string): never {
  process.stderr.write(`make-models: ${msg}\n`);
  process.exit(2);
}

try {
  mkdirSync(out, { recursive: true });
} catch (e) {
  fail(`cannot create output folder "${out}": ${(e as Error).message}`);
}
console.log(`Writing SYNTHETIC seeded models (seed ${seed}) — not trained; for graph handling and timing only.`);
for (const entry of MODEL_REGISTRY.filter((e) => only.includes(e.id))) {
  const bytes = SYNTHETIC_BUILDERS[entry.id](seed);
  const params = countParams(bytes);
  if (params !== entry.params) {
    process.stderr.write(`make-models: ${entry.id} has ${params} parameters, expected ${entry.params} (builder bug)\n`);
    process.exit(1);
  }
  const path = join(out, entry.syntheticFile);
  writeFileSync(path, bytes);
  const sha = createHash('sha256').update(bytes).digest('hex');
  console.log(
    `${entry.syntheticFile.padEnd(24)} params ${String(params).padStart(10)}  bytes ${String(bytes.length).padStart(10)}  sha256 ${sha}`,
  );
}
