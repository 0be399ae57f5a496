/**
 * Command-line arguments of `npm run bench`, parsed into the cartesian product of
 * ExperimentConfigs. Comma lists (`--backend tensorrt,snpe --w-bits 8,4`) multiply.
 * Throws QpError('ARG_INVALID') with a one-line message on anything malformed.
 */
import { parseArgs } from 'node:util';
import { QpError } from '../lib/protocol/errors.ts';
import { PTQ_METHODS, type ExperimentConfig, type PtqMethod } from '../lib/protocol/config.ts';
import { resolveConfig } from '../lib/experiment/config.ts';
import { BACKEND_NAMES, OBSERVER_NAMES, type BackendName, type ObserverName } from '../lib/quant/types.ts';

export interface BenchArgs {
  model: string;
  data: string;
  labels?: string;
  json?: string;
  engine: 'wasm' | 'node';
  threads?: number;
  preprocess?: string;
  /** square input size for models whose height/width are symbolic */
  inputSize?: number;
  analyze: boolean;
  /** every combination to run; model/dataset ids are filled in later */
  configs: ExperimentConfig[];
}

export const USAGE = `usage: npm run bench -- --model FILE --data DIR [--labels FILE] [--backend NAME[,NAME…]]
  [--w-bits N[,N…]] [--a-bits N[,N…]] [--w-observer NAME[,…]] [--a-observer NAME[,…]]
  [--w-granularity per-tensor|per-channel] [--calib N] [--eval N] [--seed N] [--no-fold-bn]
  [--fix bias-correction,bn-reestimate] [--ptq none|adaround|gptq[,…]] [--ptq-iters N] [--analyze] [--engine wasm|node] [--threads N]
  [--preprocess torchvision|efficientnet-lite] [--input-size N] [--json FILE]
backends: ${BACKEND_NAMES.join(' ')}
observers: ${OBSERVER_NAMES.join(' ')}`;

function bad(msg: string): never {
  throw new QpError('ARG_INVALID', msg);
}

function list(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const items = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) bad(`Empty list "${v}".`);
  return items;
}

function int(name: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v)) bad(`--${name} must be a whole number, got "${v}".`);
  const n = Number(v);
  if (n < min || n > max) bad(`--${name} must be between ${min} and ${max}, got ${n}.`);
  return n;
}

function oneOf<T extends string>(name: string, v: string, allowed: readonly T[]): T {
  if (!allowed.includes(v as T)) bad(`Unknown --${name} "${v}". Choose one of: ${allowed.join(', ')}.`);
  return v as T;
}

export function parseBenchArgs(argv: string[]): BenchArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        model: { type: 'string' },
        data: { type: 'string' },
        labels: { type: 'string' },
        backend: { type: 'string' },
        'w-bits': { type: 'string' },
        'a-bits': { type: 'string' },
        'w-observer': { type: 'string' },
        'a-observer': { type: 'string' },
        'w-granularity': { type: 'string' },
        calib: { type: 'string' },
        eval: { type: 'string' },
        seed: { type: 'string' },
        json: { type: 'string' },
        engine: { type: 'string' },
        threads: { type: 'string' },
        preprocess: { type: 'string' },
        'input-size': { type: 'string' },
        fix: { type: 'string' },
        ptq: { type: 'string' },
        'ptq-iters': { type: 'string' },
        analyze: { type: 'boolean' },
        'no-fold-bn': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    bad(`${(e as Error).message.split('\n')[0]} (see --help).`);
  }
  const v = parsed.values;
  if (v.help) throw new QpError('ARG_INVALID', USAGE);
  if (!v.model) bad('Missing --model FILE (an ONNX image classifier).');
  if (!v.data) bad('Missing --data DIR (a folder of images named by WordNet id).');

  const backends = (list(v.backend) ?? ['tensorrt']).map((b) => oneOf('backend', b, BACKEND_NAMES));
  const wBits = list(v['w-bits'])?.map((b) => int('w-bits', b, 2, 16));
  const aBits = list(v['a-bits'])?.map((b) => int('a-bits', b, 2, 16));
  const wObs = list(v['w-observer'])?.map((o) => oneOf('w-observer', o, OBSERVER_NAMES));
  const aObs = list(v['a-observer'])?.map((o) => oneOf('a-observer', o, OBSERVER_NAMES));
  const wGran = v['w-granularity'] ? oneOf('w-granularity', v['w-granularity'], ['per-tensor', 'per-channel'] as const) : undefined;
  const fixes = list(v.fix)?.map((f) => oneOf('fix', f, ['bias-correction', 'bn-reestimate'] as const)) ?? [];
  const ptqs = (list(v.ptq) ?? ['none']).map((m) => oneOf('ptq', m, PTQ_METHODS)) as PtqMethod[];
  const ptqIters = v['ptq-iters'] ? int('ptq-iters', v['ptq-iters'], 1, 100_000) : undefined;
  const calib = v.calib ? int('calib', v.calib, 1, 1_000_000) : 128;
  const evalN = v.eval ? int('eval', v.eval, 1, 1_000_000) : undefined;
  const seed = v.seed ? int('seed', v.seed, 0, 0x7fffffff) : 0;
  const engine = v.engine ? oneOf('engine', v.engine, ['wasm', 'node'] as const) : 'wasm';
  const threads = v.threads ? int('threads', v.threads, 1, 64) : undefined;
  const inputSize = v['input-size'] ? int('input-size', v['input-size'], 8, 4096) : undefined;
  if (v.preprocess) oneOf('preprocess', v.preprocess, ['torchvision', 'efficientnet-lite'] as const);

  const configs: ExperimentConfig[] = [];
  for (const backend of backends as BackendName[]) {
    for (const wb of wBits ?? [undefined]) {
      for (const ab of aBits ?? [undefined]) {
        for (const wo of (wObs ?? [undefined]) as (ObserverName | undefined)[]) {
          for (const ao of (aObs ?? [undefined]) as (ObserverName | undefined)[]) {
            for (const ptq of ptqs) configs.push(
              resolveConfig({
                backend,
                wBits: wb,
                aBits: ab,
                wObserver: wo,
                aObserver: ao,
                wGranularity: wGran,
                calib,
                // eval is set once the dataset size is known when not given
                eval: evalN ?? 1,
                seed,
                foldBn: !v['no-fold-bn'],
                biasCorrection: fixes.includes('bias-correction'),
                bnReestimate: fixes.includes('bn-reestimate'),
                ptq,
                ptqIters,
              }),
            );
          }
        }
      }
    }
  }
  return {
    model: v.model,
    data: v.data,
    labels: v.labels,
    json: v.json,
    engine,
    threads,
    preprocess: v.preprocess,
    inputSize,
    analyze: !!v.analyze,
    configs: evalN === undefined ? configs.map((c) => ({ ...c, eval: -1 })) : configs,
  };
}
