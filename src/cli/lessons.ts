/**
 * `npm run lessons`: checks every lesson's claim headless on the real MobileNet-V2 and
 * the sample images (../shared/data by default), prints a table (stdout) and progress
 * (stderr), writes `[{id, title, claim, holds, measured}]` with --json, and exits 1 when
 * a claim fails (2 on bad arguments or input).
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { QpError, toErrorInfo } from '../lib/util/errors.ts';
import { DiskCropStore, loadImageFolder } from '../lib/data/dataset.node.ts';
import { createNodeEngine } from '../lib/engine/node.ts';
import { findModelBySha256 } from '../lib/models/registry.ts';
import { LESSONS } from '../lessons/index.ts';
import { lessonsTable, runLessonClaims } from '../lessons/run-claims.ts';

const SHARED = resolve(import.meta.dirname, '../../../shared/data');

export const LESSONS_USAGE = `usage: npm run lessons -- [--json FILE] [--engine wasm|node] [--threads N] [--only ID[,ID…]]
  [--eval N] [--model FILE] [--data DIR]
Defaults: the MobileNet-V2 and the sample images in ${SHARED}. --eval N evaluates on fewer
images (quick look; the claims are stated for 872).`;

export interface LessonsArgs {
  json?: string;
  engine: 'wasm' | 'node';
  threads?: number;
  only?: string[];
  evalLimit?: number;
  model: string;
  data: string;
}

function bad(msg: string): never {
  throw new QpError('ARG_INVALID', msg);
}

export function parseLessonsArgs(argv: string[]): LessonsArgs {
  let v;
  try {
    v = parseArgs({
      args: argv,
      options: {
        json: { type: 'string' },
        engine: { type: 'string' },
        threads: { type: 'string' },
        only: { type: 'string' },
        eval: { type: 'string' },
        model: { type: 'string' },
        data: { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (e) {
    bad(`${(e as Error).message}\n${LESSONS_USAGE}`);
  }
  if (v.help) bad(LESSONS_USAGE);
  const engine = v.engine ?? 'wasm';
  if (engine !== 'wasm' && engine !== 'node') bad(`Unknown --engine "${engine}". Choose wasm or node.`);
  const posInt = (name: string, s: string | undefined) => {
    if (s === undefined) return undefined;
    if (!/^\d+$/.test(s) || Number(s) < 1) bad(`--${name} must be a whole number of at least 1, got "${s}".`);
    return Number(s);
  };
  const only = v.only
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const id of only ?? []) {
    if (!LESSONS.some((l) => l.id === id))
      bad(`There is no lesson "${id}". Lessons: ${LESSONS.map((l) => l.id).join(', ')}.`);
  }
  return {
    json: v.json,
    engine,
    threads: posInt('threads', v.threads),
    only,
    evalLimit: posInt('eval', v.eval),
    model: v.model ?? resolve(SHARED, 'models/mobilenetv2-7-fp32.onnx'),
    data: v.data ?? resolve(SHARED, 'imagenet-sample'),
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
    const info = toErrorInfo(e);
    process.stderr.write(
      info.code === 'ARG_INVALID' && info.message.startsWith('usage:')
        ? `${info.message}\n`
        : `error [${info.code}]: ${info.message}\n`,
    );
    return info.userError ? 2 : 1;
  }
}
