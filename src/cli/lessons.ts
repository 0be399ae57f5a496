/**
 * `npm run lessons`: checks every lesson's claim headless on the real MobileNet-V2 and
 * the sample images (../shared/data by default), prints a table (stdout) and progress
 * (stderr), writes `[{id, title, claim, holds, measured}]` with --json, and exits 1 when
 * a claim fails (2 on bad arguments or input).
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { QpError } from '../lib/util/errors.ts';
import { CLI_OPTIONS, configValue, parseCli, reportCliError, usage, type CliSpec } from './options.ts';
import { DiskCropStore, loadImageFolder } from '../lib/data/dataset.node.ts';
import { createNodeEngine } from '../lib/engine/node.ts';
import { findModelBySha256 } from '../lib/models/registry.ts';
import { LESSONS } from '../lessons/index.ts';
import { lessonsTable, runLessonClaims } from '../lessons/run-claims.ts';

const SHARED = resolve(import.meta.dirname, '../../../shared/data');

/** The command line of `npm run lessons`. */
export const LESSONS_CLI: CliSpec = {
  command: 'npm run lessons --',
  config: ['model', 'dataset', 'eval'],
  defaults: {
    model: resolve(SHARED, 'models/mobilenetv2-7-fp32.onnx'),
    dataset: resolve(SHARED, 'imagenet-sample'),
  },
  lists: [],
  run: ['engine', 'threads'],
  extra: {
    json: { ...CLI_OPTIONS.json, help: 'write [{id, title, claim, holds, measured}] as JSON' },
    only: {
      flag: 'only',
      arg: 'ID[,ID…]',
      type: { kind: 'enum', values: LESSONS.map((l) => l.id) },
      list: true,
      help: 'only these lessons',
    },
  },
  notes: '--eval N evaluates on fewer images (a quick look; the claims are stated for 872).',
};

export const LESSONS_USAGE = usage(LESSONS_CLI);

export interface LessonsArgs {
  json?: string;
  engine: 'wasm' | 'node';
  threads?: number;
  only?: string[];
  evalLimit?: number;
  model: string;
  data: string;
}

export function parseLessonsArgs(argv: string[]): LessonsArgs {
  const parsed = parseCli(LESSONS_CLI, argv);
  const v = parsed.values;
  const evalCount = configValue(parsed, 'eval');
  return {
    json: v.json as string | undefined,
    engine: v.engine as 'wasm' | 'node',
    threads: v.threads as number | undefined,
    only: v.only as string[] | undefined,
    // "rest" is every image the calibration split leaves, which is no limit
    evalLimit: evalCount === 'rest' ? undefined : (evalCount as number | undefined),
    model: configValue(parsed, 'model') as string,
    data: configValue(parsed, 'dataset') as string,
  };
}

export async function main(argv: string[]): Promise<number> {
  try {
    const args = parseLessonsArgs(argv);
    let modelBytes: Uint8Array;
    try {
      modelBytes = new Uint8Array(await readFile(args.model));
    } catch {
      throw new QpError(
        'FILE_NOT_FOUND',
        `The model file "${args.model}" could not be read. Give the MobileNet-V2 ONNX file with --model.`,
      );
    }
    const entry = findModelBySha256(createHash('sha256').update(modelBytes).digest('hex'));
    if (entry?.id !== 'mobilenet-v2') {
      throw new QpError(
        'ARG_INVALID',
        `The lessons' claims are about the MobileNet-V2 of the model registry, but "${args.model}" is ${entry ? entry.label : 'an unknown model'}. Give mobilenetv2-7-fp32.onnx with --model.`,
      );
    }
    const dataset = await loadImageFolder(args.data);
    const engine = await createNodeEngine(args.engine, args.threads);
    const lessons = args.only ? LESSONS.filter((l) => args.only!.includes(l.id)) : LESSONS;
    process.stderr.write(`${lessons.length} lesson(s), ${dataset.items.length} images, engine ${engine.description}\n`);
    let lastStage = '';
    let last = 0;
    const outcomes = await runLessonClaims(
      lessons,
      {
        engine,
        modelBytes,
        model: { id: entry.id, label: entry.label, preprocess: entry.preprocess, classes: 1000 },
        dataset,
        cropStore: new DiskCropStore(),
      },
      {
        evalLimit: args.evalLimit,
        log: (line) => process.stderr.write(`${line}\n`),
        onProgress: (p) => {
          const now = Date.now();
          if (p.stage === lastStage && now - last < 5000) return;
          lastStage = p.stage;
          last = now;
          process.stderr.write(`  [${p.stage}] ${p.message}\n`);
        },
      },
    );
    process.stdout.write(`${lessonsTable(outcomes)}\n`);
    const failed = outcomes.filter((o) => !o.holds);
    for (const o of failed) process.stdout.write(`\n${o.id} FAILS:\n  ${o.details.join('\n  ')}\n`);
    if (args.json) {
      await writeFile(
        args.json,
        JSON.stringify(
          outcomes.map(({ id, title, claim, holds, measured }) => ({ id, title, claim, holds, measured })),
          null,
          2,
        ),
      );
    }
    process.stdout.write(
      failed.length
        ? `\n${failed.length} of ${outcomes.length} claims FAIL.\n`
        : `\nAll ${outcomes.length} claims hold.\n`,
    );
    return failed.length ? 1 : 0;
  } catch (e) {
    return reportCliError(e);
  }
}
