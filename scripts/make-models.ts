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

const USAGE = 'usage: npm run make-models -- --out DIR [--seed N] [--only resnet18,mobilenet-v2,efficientnet-lite0]';

function fail(msg: string): never {
  process.stderr.write(`make-models: ${msg} (${USAGE})\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): { out: string; seed: number; only: ModelId[] } {
  let out: string | undefined;
  let seed = 1;
  let only: ModelId[] = MODEL_REGISTRY.map((e) => e.id);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) fail(`${a} needs a value`);
      return v;
    };
    if (a === '--out') out = value();
    else if (a === '--seed') {
      const v = value();
      seed = Number(v);
      if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
        fail(`--seed must be an integer from 0 to 4294967295, got "${v}"`);
    } else if (a === '--only') {
      const ids = value().split(',');
      const known = MODEL_REGISTRY.map((e) => e.id as string);
      const bad = ids.filter((id) => !known.includes(id));
      if (bad.length) fail(`unknown model "${bad[0]}"; known: ${known.join(', ')}`);
      only = ids as ModelId[];
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else fail(`unknown argument "${a}"`);
  }
  if (!out) fail('--out DIR is required');
  return { out, seed, only };
}

const { out, seed, only } = parseArgs(process.argv.slice(2));
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
