/**
 * The bad-input corpus (tests/fixtures/bad-inputs/expected.json) through the core
 * pipeline, `runPipeline`, rather than through each layer alone (the unit tests do
 * that): model files arrive as modelBytes, bad images sit in a data set among good
 * ones, label files and folders come through the Node loaders. Every failure must be a
 * QpError with the corpus's stable code (and survive `toErrorInfo` as data); every bad
 * image must be skipped and counted, never crash the run.
 * When workers/api.ts can be imported in Node, the model files also go through the
 * worker API's loadModel and must come back as { ok: false, error: { code } }.
 */
import { mkdtempSync, openAsBlob, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readClassIndexFile, loadImageFolder } from '../../src/lib/data/dataset.node.ts';
import { decodeImage, initJpegDecoder } from '../../src/lib/data/decode.ts';

beforeAll(() => initJpegDecoder());
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import type { Dataset } from '../../src/lib/data/types.ts';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import type { Engine } from '../../src/lib/engine/types.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { runPipeline } from '../../src/lib/pipeline/run.ts';
import type { ExperimentResult, ModelSpec } from '../../src/lib/experiment/types.ts';
import { makeGraph, makeNode, makeTensor, makeValueInfo } from '../../src/lib/onnx/ir.ts';
import { serializeModel } from '../../src/lib/onnx/model.ts';
import { ERROR_CODES, QpError, toErrorInfo, type ErrorInfo } from '../../src/lib/util/errors.ts';
import { readModelFile } from '../../src/lib/data/read-model.ts';
import { MAX_MODEL_BYTES } from '../../src/lib/onnx/limits.ts';
import { memoryDataset, syntheticImages, type MemoryImage } from '../support/pipeline-helpers.ts';

const DIR = resolve(import.meta.dirname, '../fixtures/bad-inputs');

interface Case {
  file: string;
  layer: 'size' | 'parse' | 'validate' | 'image' | 'labels' | 'dataset';
  options?: { labels?: number | string; inputSize?: number; classes?: number; bytes?: number };
  code: string | null;
  note: string;
}
const corpus = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as { cases: Case[] };
const bytesOf = (file: string) => new Uint8Array(readFileSync(join(DIR, file)));
const title = (c: Case) =>
  `${c.file} (${c.layer}${c.options ? ' ' + JSON.stringify(c.options) : ''}) → ${c.code ?? 'ok'}: ${c.note}`;

const CLASSES = 10; // valid-tiny.onnx and the label file have 10 classes
const GOOD = 11;
const model = (extra: Partial<ModelSpec> = {}): ModelSpec => ({
  id: 'test:bad-inputs',
  label: 'corpus',
  preprocess: TORCHVISION_SPEC,
  classes: CLASSES,
  ...extra,
});
/** calibrate on 4, evaluate the rest: every image of the data set is used */
const configs = (n: number) => [
  resolveConfig({ backend: 'tensorrt', model: 'test:bad-inputs', calib: 4, eval: Math.max(1, n - 4), seed: 1 }),
];

/** Runs `fn`, which must throw; returns the error as boundary data after checking it is a coded QpError. */
async function errorOf(fn: () => Promise<unknown>): Promise<ErrorInfo> {
  let thrown: unknown;
  try {
    await fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, 'expected an error').toBeInstanceOf(QpError);
  const info = toErrorInfo(thrown);
  expect(ERROR_CODES).toContain(info.code);
  expect(info.code).not.toBe('INTERNAL');
  expect(info.userError).toBe(true);
  expect(info.message).toMatch(/^[A-Z"'].{20,}[.)]$/s); // a full sentence, not a stack fragment
  return info;
}

/** A tiny 1,000-class classifier [N,3,32,32] → [N,1000] (for label files of the wrong size). */
function thousandClassModel(): Uint8Array {
  const k = 1000;
  return serializeModel(
    makeGraph({
      inputs: [makeValueInfo('x', ['N', 3, 32, 32])],
      outputs: [makeValueInfo('y', ['N', k])],
      nodes: [
        makeNode('GlobalAveragePool', ['x'], ['p']),
        makeNode('Flatten', ['p'], ['f']),
        makeNode('Gemm', ['f', 'w'], ['y'], { transB: 1 }),
      ],
      initializers: [
        makeTensor(
          'w',
          [k, 3],
          Float32Array.from({ length: 3 * k }, (_, i) => Math.sin(i)),
        ),
      ],
    }),
  );
}

describe('bad-input corpus through runPipeline', () => {
  let engine: Engine;
  const good = syntheticImages(GOOD, CLASSES, 7);
  const validTiny = bytesOf('valid-tiny.onnx');
  const run = (modelBytes: Uint8Array, dataset: Dataset, spec = model()): Promise<ExperimentResult[]> =>
    runPipeline(configs(dataset.items.length), { engine, modelBytes, model: spec, dataset });

  beforeAll(async () => {
    engine = await createNodeWasmEngine(2);
  });

  it('covers every layer of the corpus', () => {
    expect(new Set(corpus.cases.map((c) => c.layer))).toEqual(
      new Set(['size', 'parse', 'validate', 'image', 'labels', 'dataset']),
    );
  });

  for (const c of corpus.cases) {
    it(title(c), async () => {
      switch (c.layer) {
        case 'size': {
          // A sparse file of the stated size: refused by its size, so the 300 MB are never read.
          const dir = mkdtempSync(join(tmpdir(), 'qp-size-'));
          try {
            const path = join(dir, 'huge.onnx');
            writeFileSync(path, bytesOf(c.file));
            truncateSync(path, c.options!.bytes!);
            const blob = await openAsBlob(path);
            expect(blob.size).toBe(c.options!.bytes);
            expect(blob.size).toBeGreaterThan(MAX_MODEL_BYTES);
            const heap = process.memoryUsage().arrayBuffers;
            const info = await errorOf(() => readModelFile(Object.assign(blob, { name: 'huge.onnx' })));
            expect(info.code).toBe(c.code);
            expect(info.message).toMatch(/"huge\.onnx" is 300 MB, more than the 268\.4 MB/);
            expect(process.memoryUsage().arrayBuffers - heap).toBeLessThan(50e6); // nothing was read
            // the same file's first bytes are a valid model: only its size is at fault
            expect((await run(bytesOf(c.file), memoryDataset(good, CLASSES, 'size')))[0].images.skipped).toBe(0);
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
          break;
        }
        case 'parse':
        case 'validate': {
          // 1,000 labels are simulated with a 1,000-class data set; inputSize is the user's answer
          const classes = typeof c.options?.labels === 'number' ? c.options.labels : CLASSES;
          const dataset = memoryDataset(good, classes, `models-${classes}`);
          const spec = model({ inputSize: c.options?.inputSize });
          if (c.code === null) {
            const [r] = await run(bytesOf(c.file), dataset, spec);
            expect(r.images).toEqual({ calib: 4, eval: GOOD - 4, skipped: 0 });
          } else {
            expect((await errorOf(() => run(bytesOf(c.file), dataset, spec))).code).toBe(c.code);
          }
          break;
        }
        case 'image': {
          // the layer itself
          if (c.code === null) expect(decodeImage(bytesOf(c.file), c.file).width).toBeGreaterThan(0);
          else expect((await errorOf(async () => decodeImage(bytesOf(c.file), c.file))).code).toBe(c.code);
          // through the pipeline: the image among good ones; a bad one is skipped and counted
          const images: MemoryImage[] = [...good, { id: c.file, label: 3, bytes: bytesOf(c.file) }];
          const [r] = await run(validTiny, memoryDataset(images, CLASSES, `image-${c.file}`));
          const skipped = c.code === null ? 0 : 1;
          expect(r.images.skipped).toBe(skipped);
          expect(r.images.calib + r.images.eval).toBe(images.length - skipped);
          expect(r.quant.top1).toBeGreaterThanOrEqual(0);
          break;
        }
        case 'labels': {
          // a well-formed 10-class index: the loader accepts it, the pipeline rejects it for a 1,000-class model
          const classIndex = await readClassIndexFile(join(DIR, c.file));
          expect(classIndex).toHaveLength(CLASSES);
          const dataset: Dataset = { ...memoryDataset(good, classIndex.length, 'labels'), classNames: classIndex };
          expect(c.options?.classes).toBe(1000);
          expect((await errorOf(() => run(thousandClassModel(), dataset, model({ classes: 1000 })))).code).toBe(c.code);
          break;
        }
        case 'dataset': {
          // the folder loader refuses an empty folder …
          const labels = typeof c.options?.labels === 'string' ? join(DIR, c.options.labels) : undefined;
          expect((await errorOf(() => loadImageFolder(join(DIR, c.file), labels))).code).toBe(c.code);
          // … and the pipeline refuses an empty data set with the same code
          expect(await errorOf(() => run(validTiny, memoryDataset([], CLASSES, 'empty')))).toMatchObject({
            code: c.code,
          });
          break;
        }
      }
    });
  }

  it('a data set whose images are all unreadable gives DATA_EMPTY, not a crash', async () => {
    const bad = ['corrupt.JPEG', 'zero-byte.JPEG', 'huge-dims.JPEG'];
    const images = Array.from({ length: 6 }, (_, i) => ({
      id: `bad-${i}-${bad[i % 3]}`,
      label: i % CLASSES,
      bytes: bytesOf(bad[i % 3]),
    }));
    expect((await errorOf(() => run(validTiny, memoryDataset(images, CLASSES, 'all-bad')))).code).toBe('DATA_EMPTY');
  });

  it('asking for more images than the data set holds gives DATA_TOO_FEW_IMAGES', async () => {
    const dataset = memoryDataset(good, CLASSES, 'few');
    const cfg = resolveConfig({ backend: 'tensorrt', model: 'test:bad-inputs', calib: 8, eval: GOOD, seed: 1 });
    const info = await errorOf(() => runPipeline([cfg], { engine, modelBytes: validTiny, model: model(), dataset }));
    expect(info.code).toBe('DATA_TOO_FEW_IMAGES');
  });
});

// The worker API side (the browser engineer owns workers/): only when it imports in Node.
let workerApi: typeof import('../../workers/api.ts') | undefined;
try {
  workerApi = await import('../../workers/api.ts');
} catch (e) {
  console.warn(
    `[skip] workers/api.ts could not be imported in Node (${(e as Error).message}): corpus not run through the worker API.`,
  );
}

describe.skipIf(!workerApi)('bad-input corpus through the worker API (loadModel)', () => {
  // model cases without layer options: loadModel validates without a label map or input size
  const cases = corpus.cases.filter((c) => (c.layer === 'parse' || c.layer === 'validate') && !c.options);
  for (const c of cases) {
    it(title(c), async () => {
      const stored: unknown[] = [];
      const storage = { putModel: async (m: unknown) => void stored.push(m), getModel: async () => undefined };
      const api = workerApi!.createQuantApi({ storage: storage as never });
      const res = await api.loadModel({ kind: 'bytes', bytes: bytesOf(c.file), name: c.file });
      if (c.code === null) {
        expect(res.ok).toBe(true);
      } else {
        expect(res).toMatchObject({ ok: false, error: { code: c.code } });
        if (!res.ok) expect(res.error.message.length).toBeGreaterThan(20);
        expect(stored).toHaveLength(0); // a rejected file is not cached
      }
    });
  }
});
