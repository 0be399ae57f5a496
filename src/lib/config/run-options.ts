/**
 * The run options: what shapes a run without changing any of its numbers, so they are not
 * part of the config or its hash — the engine, how many images the per-layer analysis looks
 * at, the evaluation batch and the engine's threads. One table for every front door: the
 * link codec (config/link.ts), the worker's checks, the app's defaults and the CLI's flags
 * and help (src/cli/options.ts) all read it.
 *
 * Why these stay out of the hash: the engines compute the same graph (wasm in the browser
 * and in Node bit-identically; WebGPU and onnxruntime-node may differ in the last bits of a
 * float sum), the result records which engine ran, and the analysis and the batch size do
 * not change top-1. Everything that does change a number is a config field (schema.ts).
 *
 * A leaf module of the config package: pure data.
 */
import type { FieldKind } from './schema.ts';

export interface RunOptionField {
  name: 'engine' | 'analysisImages' | 'evalBatch' | 'threads';
  label: string;
  help: string;
  /** in the app and in its shareable link (the key is written only when it differs from the default) */
  app?: { type: FieldKind; default: string | number; link?: string };
  /** on the command line */
  cli?: { flag: string; arg: string; type: FieldKind; default?: string | number };
}

export const RUN_OPTIONS = [
  {
    name: 'engine',
    label: 'Engine',
    help: 'Which onnxruntime build runs the models. In the browser, WebGPU where the browser has it and wasm otherwise ("auto"); on the command line, onnxruntime-web\'s wasm build (the same numbers as the browser\'s wasm) or onnxruntime-node (faster; it may differ in the last bits of a float sum).',
    app: { type: { kind: 'enum', values: ['auto', 'webgpu', 'wasm'] }, default: 'auto', link: 'engine' },
    cli: { flag: 'engine', arg: 'wasm|node', type: { kind: 'enum', values: ['wasm', 'node'] }, default: 'wasm' },
  },
  {
    name: 'analysisImages',
    label: 'Analysis images',
    help: 'How many evaluation images the per-layer analysis ("why accuracy drops") runs on, from the start of the evaluation split. The analysis does not change the run\'s accuracy; more images give steadier per-layer figures and take longer.',
    // the link carries it only while the analysis is on: `analyze=N`
    app: { type: { kind: 'int', min: 1, max: 10_000 }, default: 64, link: 'analyze' },
    cli: { flag: 'analysis-images', arg: 'N', type: { kind: 'int', min: 1, max: 10_000 }, default: 64 },
  },
  {
    name: 'evalBatch',
    label: 'Evaluation batch',
    help: 'Images per evaluation batch. Results do not depend on it; a smaller batch lets a cancel stop sooner (the browser uses 16).',
    app: { type: { kind: 'int', min: 1, max: 4096 }, default: 16 },
    cli: { flag: 'eval-batch', arg: 'N', type: { kind: 'int', min: 1, max: 4096 }, default: 32 },
  },
  {
    name: 'threads',
    label: 'Engine threads',
    help: 'Threads the engine may use (default: up to 4, as many as the machine has). In the browser, wasm threads need the page to be cross-origin isolated.',
    cli: { flag: 'threads', arg: 'N', type: { kind: 'int', min: 1, max: 64 } },
  },
] as const satisfies readonly RunOptionField[];

export type RunOptionName = (typeof RUN_OPTIONS)[number]['name'];

/** The table entry of a run option. */
export function runOption(name: RunOptionName): RunOptionField {
  return RUN_OPTIONS.find((o) => o.name === name)!;
}

/** The engines the app offers (and a link may name). */
export type AppEngine = 'auto' | 'webgpu' | 'wasm';
