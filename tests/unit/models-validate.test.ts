// validateClassifier on hand-made graphs and on the bad-input corpus (tests/fixtures/bad-inputs).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateClassifier, type ValidateOptions } from '../../src/lib/models/validate.ts';
import { buildMobileNetV2 } from '../../src/lib/models/builders.ts';
import { makeGraph, makeNode, makeTensor, makeValueInfo, type DType } from '../../src/lib/onnx/ir.ts';
import { parseModel } from '../../src/lib/onnx/model.ts';
import { checkModelSize } from '../../src/lib/onnx/limits.ts';
import { decodeImage, initJpegDecoder } from '../../src/lib/data/decode.ts';

beforeAll(() => initJpegDecoder());
import { loadClassIndex } from '../../src/lib/data/dataset.ts';
import { loadImageFolder } from '../../src/lib/data/dataset.node.ts';
import { QpError } from '../../src/lib/util/errors.ts';

const DIR = join(import.meta.dirname, '../fixtures/bad-inputs');

interface Case {
  file: string;
  layer: 'size' | 'parse' | 'validate' | 'image' | 'labels' | 'dataset';
  code: string | null;
  options?: Record<string, unknown>;
  note?: string;
}
const corpus = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as { cases: Case[] };

type Shape = (number | string | null)[] | null;

/** input → Conv → GAP → Flatten → classifier → [optional Softmax] → output */
function classifier(opts: {
  input?: Shape;
  dtype?: DType;
  output?: Shape;
  classes?: number;
  matmul?: boolean;
  softmax?: boolean;
  extraInputs?: number;
}) {
  const k = opts.classes ?? 10;
  const nodes = [
    makeNode('Conv', ['x', 'w'], ['c']),
    makeNode('GlobalAveragePool', ['c'], ['p']),
    makeNode('Flatten', ['p'], ['f'], { axis: 1 }),
  ];
  const inits = [makeTensor('w', [4, 3, 3, 3], new Float32Array(108))];
  const last = opts.softmax ? 'z' : 'y';
  if (opts.matmul) {
    nodes.push(makeNode('MatMul', ['f', 'fcw'], ['m']), makeNode('Add', ['m', 'fcb'], [last]));
    inits.push(makeTensor('fcw', [4, k], new Float32Array(4 * k)), makeTensor('fcb', [k], new Float32Array(k)));
  } else {
    nodes.push(makeNode('Gemm', ['f', 'fcw', 'fcb'], [last], { transB: 1 }));
    inits.push(makeTensor('fcw', [k, 4], new Float32Array(4 * k)), makeTensor('fcb', [k], new Float32Array(k)));
  }
  if (opts.softmax) nodes.push(makeNode('Softmax', ['z'], ['y'], { axis: 1 }));
  const inputs = [
    makeValueInfo('x', opts.input === undefined ? ['N', 3, 224, 224] : opts.input, opts.dtype ?? 'float32'),
  ];
  for (let i = 0; i < (opts.extraInputs ?? 0); i++) inputs.push(makeValueInfo(`extra${i}`, [1]));
  return makeGraph({
    inputs,
    outputs: [makeValueInfo('y', opts.output === undefined ? ['N', k] : opts.output)],
    nodes,
    initializers: inits,
  });
}

function codeOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    if (e instanceof QpError) return e.code;
    throw e;
  }
}

describe('validateClassifier', () => {
  it('describes an NCHW classifier', () => {
    expect(validateClassifier(classifier({}))).toEqual({
      inputName: 'x',
      layout: 'NCHW',
      size: 224,
      channels: 3,
      classes: 10,
      batch: 'dynamic',
      outputName: 'y',
      endsWithSoftmax: false,
    });
  });

  it('accepts NHWC, fixed batch 1, a trailing Softmax and a MatMul classifier', () => {
    const info = validateClassifier(
      classifier({ input: [1, 224, 224, 3], softmax: true, matmul: true, classes: 1000 }),
      { labels: 1000 },
    );
    expect(info).toMatchObject({ layout: 'NHWC', size: 224, batch: 1, classes: 1000, endsWithSoftmax: true });
  });

  it('reads the class count from the classifier weights when the output shape is not declared', () => {
    expect(validateClassifier(classifier({ output: null, classes: 37 })).classes).toBe(37);
    expect(validateClassifier(classifier({ output: ['N', 'K'], classes: 5, matmul: true })).classes).toBe(5);
  });

  it('accepts [N, K, 1, 1] outputs', () => {
    expect(validateClassifier(classifier({ output: ['N', 10, 1, 1] })).classes).toBe(10);
  });

  it('resolves a symbolic spatial size only through the inputSize option; a fixed size wins', () => {
    const g = classifier({ input: ['N', 3, 'H', 'W'] });
    expect(codeOf(() => validateClassifier(g))).toBe('MODEL_INPUT_SIZE_UNKNOWN');
    expect(() => validateClassifier(g)).toThrow(/e\.g\. 224/);
    expect(validateClassifier(g, { inputSize: 256 }).size).toBe(256);
    expect(validateClassifier(classifier({ input: ['N', 3, 'H', 224] })).size).toBe(224);
    expect(validateClassifier(classifier({}), { inputSize: 299 }).size).toBe(224);
    expect(codeOf(() => validateClassifier(g, { inputSize: 0 }))).toBe('ARG_INVALID');
  });

  const errors: [string, Parameters<typeof classifier>[0], ValidateOptions, string][] = [
    ['two inputs', { extraInputs: 1 }, {}, 'MODEL_INPUT_COUNT'],
    ['int64 token ids', { input: ['N', 128], dtype: 'int64' }, {}, 'MODEL_INPUT_NOT_IMAGE'],
    ['a 4-D int input', { input: ['N', 3, 224, 224], dtype: 'uint8' }, {}, 'MODEL_INPUT_NOT_IMAGE'],
    ['undeclared input shape', { input: null }, {}, 'MODEL_INPUT_NOT_IMAGE'],
    ['one channel (grayscale)', { input: ['N', 1, 28, 28] }, {}, 'MODEL_INPUT_NOT_IMAGE'],
    ['float16 input', { dtype: 'float16' }, {}, 'MODEL_UNSUPPORTED'],
    ['non-square input', { input: ['N', 3, 224, 320] }, {}, 'MODEL_UNSUPPORTED'],
    ['a segmentation map', { output: ['N', 21, 224, 224] }, {}, 'MODEL_OUTPUT_NOT_CLASSES'],
    ['a single score', { output: ['N', 1], classes: 1 }, {}, 'MODEL_OUTPUT_NOT_CLASSES'],
    ['a label count mismatch', { classes: 1000 }, { labels: 10 }, 'MODEL_CLASS_COUNT_MISMATCH'],
  ];
  for (const [what, g, opts, code] of errors) {
    it(`rejects ${what} with ${code}`, () => {
      let err: unknown;
      try {
        validateClassifier(classifier(g), opts);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(QpError);
      expect((err as QpError).code).toBe(code);
      expect((err as QpError).userError).toBe(true);
      expect((err as QpError).message).toMatch(/^[A-Z].*\.$/s); // a full sentence
    });
  }

  it('says which class count the label file needs', () => {
    expect(() => validateClassifier(classifier({ classes: 1000 }), { labels: 10 })).toThrow(
      /label file with 1000 classes/,
    );
  });
});

describe('bad-input corpus (tests/fixtures/bad-inputs/expected.json)', () => {
  const bytes = (f: string) => new Uint8Array(readFileSync(join(DIR, f)));
  let thousandClassGraph: ReturnType<typeof parseModel> | undefined;

  for (const c of corpus.cases) {
    const title = `${c.file} [${c.layer}${c.options ? ' ' + JSON.stringify(c.options) : ''}] → ${c.code ?? 'ok'}`;
    it(title, async () => {
      let code: string | null = null;
      try {
        switch (c.layer) {
          case 'size': // the size alone (the integration test reads a sparse file of it)
            checkModelSize((c.options as { bytes: number }).bytes, c.file);
            break;
          case 'parse':
            parseModel(bytes(c.file));
            break;
          case 'validate': {
            const g = parseModel(bytes(c.file)); // must parse: validation errors only
            validateClassifier(g, (c.options ?? {}) as ValidateOptions);
            break;
          }
          case 'image': {
            const img = decodeImage(bytes(c.file), c.file);
            expect(img.data.length).toBe(img.width * img.height * 3);
            break;
          }
          case 'labels': {
            const labels = loadClassIndex(JSON.parse(readFileSync(join(DIR, c.file), 'utf8')));
            expect((c.options as { classes: number }).classes).toBe(1000);
            thousandClassGraph ??= parseModel(buildMobileNetV2(1));
            validateClassifier(thousandClassGraph, { labels: labels.length });
            break;
          }
          case 'dataset':
            await loadImageFolder(join(DIR, c.file), join(DIR, (c.options as { labels: string }).labels));
            break;
        }
      } catch (e) {
        if (!(e instanceof QpError)) throw e;
        code = e.code;
      }
      expect(code).toBe(c.code);
    });
  }

  // many-nodes.onnx (10,003 nodes at ~18 bytes each) is most of it
  it('keeps the corpus small (< 300 KB) and lists every file', () => {
    const files = new Set(corpus.cases.map((c) => c.file));
    let total = 0;
    for (const f of files) if (f !== 'empty-dir') total += bytes(f).length;
    expect(total).toBeLessThan(300_000);
  });

  it('grayscale and CMYK JPEGs decode to the intended pixels', () => {
    const gray = decodeImage(bytes('grayscale.JPEG'));
    expect([gray.width, gray.height]).toEqual([16, 16]);
    // flat 8×8 blocks at 40, 100 (top) and 160, 220 (bottom), replicated to RGB
    const px = (x: number, y: number) => Array.from(gray.data.subarray((y * 16 + x) * 3, (y * 16 + x) * 3 + 3));
    expect(px(0, 0)).toEqual([40, 40, 40]);
    expect(px(15, 0)).toEqual([100, 100, 100]);
    expect(px(0, 15)).toEqual([160, 160, 160]);
    expect(px(15, 15)).toEqual([220, 220, 220]);
    const cmyk = decodeImage(bytes('cmyk.JPEG'));
    expect([cmyk.width, cmyk.height]).toEqual([16, 16]);
  });
});
