/**
 * Tensor sizes in a model file (src/lib/onnx/limits.ts, model.ts): the declared size of
 * every fixed-size ONNX element type, and that a tensor holding fewer (or more) bytes or
 * values than its shape needs is refused as MODEL_TRUNCATED, whatever its type, whether
 * it is an initializer or a Constant's attribute, raw or in its typed field.
 */
import onnxProto from 'onnx-proto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkModelStructure,
  declaredBytes,
  ELEMENT_BITS,
  MAX_GRAPH_NODES,
  MAX_MODEL_BYTES,
} from '../../src/lib/onnx/limits.ts';
import { parseModel } from '../../src/lib/onnx/model.ts';
import { QpError } from '../../src/lib/util/errors.ts';

const { onnx } = onnxProto;
type TP = onnxProto.onnx.ITensorProto;

/** Bytes of a 3-element tensor of each ONNX element type, from onnx.proto's type list. */
const BYTES_OF_THREE: [string, number, number][] = [
  ['FLOAT', 1, 12],
  ['UINT8', 2, 3],
  ['INT8', 3, 3],
  ['UINT16', 4, 6],
  ['INT16', 5, 6],
  ['INT32', 6, 12],
  ['INT64', 7, 24],
  ['BOOL', 9, 3],
  ['FLOAT16', 10, 6],
  ['DOUBLE', 11, 24],
  ['UINT32', 12, 12],
  ['UINT64', 13, 24],
  ['COMPLEX64', 14, 24],
  ['COMPLEX128', 15, 48],
  ['BFLOAT16', 16, 6],
  ['FLOAT8E4M3FN', 17, 3],
  ['FLOAT8E4M3FNUZ', 18, 3],
  ['FLOAT8E5M2', 19, 3],
  ['FLOAT8E5M2FNUZ', 20, 3],
  // two 4-bit values to a byte, the last byte half used
  ['UINT4', 21, 2],
  ['INT4', 22, 2],
  ['FLOAT4E2M1', 23, 2],
];
const FIXED = BYTES_OF_THREE.map(([, t]) => t);

/** A model whose one node reads `w`: as an initializer, or made by a Constant node from its attribute. */
function model(t: TP, as: 'initializer' | 'constant'): Uint8Array {
  const w = { ...t, name: 'w' };
  return onnx.ModelProto.encode({
    irVersion: 10,
    opsetImport: [{ domain: '', version: 21 }],
    graph: {
      name: 'g',
      node: [
        ...(as === 'constant'
          ? [{ opType: 'Constant', output: ['w'], name: 'c', attribute: [{ name: 'value', type: 4, t: w }] }]
          : []),
        { opType: 'Identity', input: ['w'], output: ['y'], name: 'id' },
      ],
      initializer: as === 'initializer' ? [w] : [],
      output: [{ name: 'y', type: { tensorType: { elemType: t.dataType } } }],
    },
  }).finish();
}

function outcome(bytes: Uint8Array): string {
  try {
    parseModel(bytes);
    return 'accepted';
  } catch (e) {
    return e instanceof QpError ? e.code : `not a QpError: ${String(e)}`;
  }
}

describe('declaredBytes', () => {
  it('knows the element size of every fixed-size ONNX type', () => {
    for (const [name, dataType, bytes] of BYTES_OF_THREE)
      expect(declaredBytes({ dataType, dims: [3] }), name).toBe(bytes);
    expect(
      Object.keys(ELEMENT_BITS)
        .map(Number)
        .sort((a, b) => a - b),
    ).toEqual(FIXED);
  });

  it('multiplies the dims; a scalar is one element, an empty dim none', () => {
    expect(declaredBytes({ dataType: 1, dims: [2, 3, 4] })).toBe(96);
    expect(declaredBytes({ dataType: 7, dims: [] })).toBe(8);
    expect(declaredBytes({ dataType: 1, dims: [5, 0] })).toBe(0);
    expect(declaredBytes({ dataType: 22, dims: [2, 2] })).toBe(2);
    expect(declaredBytes({ dataType: 22, dims: [1] })).toBe(1);
  });

  it('is NaN for a negative or fractional dim, Infinity past 2^53 bits, undefined for strings and unknown types', () => {
    expect(declaredBytes({ dataType: 1, dims: [-1, 3] })).toBeNaN();
    expect(declaredBytes({ dataType: 1, dims: [1.5] })).toBeNaN();
    expect(declaredBytes({ dataType: 1, dims: [2 ** 30, 2 ** 30, 2 ** 10] })).toBe(Infinity);
    expect(declaredBytes({ dataType: 8, dims: [4] })).toBeUndefined();
    expect(declaredBytes({ dataType: 0, dims: [4] })).toBeUndefined();
    expect(declaredBytes({ dims: [4] })).toBeUndefined();
  });
});

describe('every tensor type: a wrong byte count is refused, the right one accepted', () => {
  const dims = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 3 });

  it('raw data one byte or more short, or long, is MODEL_TRUNCATED; exact is accepted (initializer and Constant)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...FIXED),
        dims,
        fc.integer({ min: 1, max: 64 }),
        fc.boolean(),
        fc.constantFrom('initializer' as const, 'constant' as const),
        (dataType, shape, delta, short, as) => {
          const need = declaredBytes({ dataType, dims: shape })!;
          expect(outcome(model({ dataType, dims: shape, rawData: new Uint8Array(need) }, as))).toBe('accepted');
          // a raw field of 0 bytes reads as no raw data at all (the typed-field case below)
          const wrong = short ? need - delta : need + delta;
          if (wrong < 1) return;
          expect(outcome(model({ dataType, dims: shape, rawData: new Uint8Array(wrong) }, as))).toBe('MODEL_TRUNCATED');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('int16, uint16, uint32 and uint64 weights with too few bytes are refused', () => {
    for (const dataType of [4, 5, 12, 13]) {
      const need = declaredBytes({ dataType, dims: [2, 3] })!;
      for (const as of ['initializer', 'constant'] as const) {
        expect(outcome(model({ dataType, dims: [2, 3], rawData: new Uint8Array(need - 1) }, as)), `${dataType}`).toBe(
          'MODEL_TRUNCATED',
        );
        expect(outcome(model({ dataType, dims: [2, 3], rawData: new Uint8Array(need) }, as))).toBe('accepted');
      }
    }
  });

  it('values in the typed field: too few or too many are MODEL_TRUNCATED, the right count accepted', () => {
    const field = (t: number): [keyof TP, number] =>
      t === 1
        ? ['floatData', 1]
        : t === 11
          ? ['doubleData', 1]
          : t === 7
            ? ['int64Data', 1]
            : t === 12 || t === 13
              ? ['uint64Data', 1]
              : t === 14
                ? ['floatData', 2]
                : t === 15
                  ? ['doubleData', 2]
                  : t >= 21
                    ? ['int32Data', 0.5]
                    : ['int32Data', 1];
    fc.assert(
      fc.property(fc.constantFrom(...FIXED), dims, fc.integer({ min: 1, max: 5 }), (dataType, shape, delta) => {
        const [f, per] = field(dataType);
        const count = shape.reduce((a, b) => a * b, 1);
        const need = Math.ceil(count * per);
        const t = (n: number): TP => ({ dataType, dims: shape, [f]: new Array<number>(n).fill(1) });
        expect(outcome(model(t(need), 'initializer'))).toBe('accepted');
        expect(outcome(model(t(need + delta), 'initializer'))).toBe('MODEL_TRUNCATED');
        if (need - delta >= 0) expect(outcome(model(t(need - delta), 'initializer'))).toBe('MODEL_TRUNCATED');
      }),
      { numRuns: 200 },
    );
  });

  it('strings: the count of strings must match the shape', () => {
    const s = (n: number): TP => ({
      dataType: 8,
      dims: [3],
      stringData: Array.from({ length: n }, () => new Uint8Array(1)),
    });
    expect(outcome(model(s(3), 'initializer'))).toBe('accepted');
    expect(outcome(model(s(2), 'initializer'))).toBe('MODEL_TRUNCATED');
  });
});

describe('checkModelStructure (before any tensor is copied)', () => {
  const check = (graph: onnxProto.onnx.IGraphProto): string => {
    try {
      checkModelStructure({ graph });
      return 'accepted';
    } catch (e) {
      return e instanceof QpError ? `${e.code}: ${e.message}` : `not a QpError: ${String(e)}`;
    }
  };
  const w = (name: string, dataType: number, dims: number[], raw = 0): TP => ({
    name,
    dataType,
    dims,
    ...(raw ? { rawData: new Uint8Array(raw) } : {}),
  });

  it('refuses raw bytes that differ from the declared size, naming the weight and both sizes', () => {
    expect(check({ initializer: [w('a', 5, [2, 3], 11)] })).toBe(
      'MODEL_TRUNCATED: The weight "a" declares shape [2,3], which needs 12 bytes, but the file holds 11 bytes for it. The file is truncated or damaged: download or export it again.',
    );
    expect(check({ initializer: [w('a', 5, [2, 3], 13)] })).toMatch(/^MODEL_TRUNCATED/);
    expect(check({ initializer: [w('a', 5, [2, 3], 12)] })).toBe('accepted');
    // no raw data: the typed field is checked while decoding
    expect(check({ initializer: [w('a', 5, [2, 3])] })).toBe('accepted');
  });

  it('refuses an impossible shape, and skips strings and external data', () => {
    expect(check({ initializer: [w('neg', 1, [-2, 3], 4)] })).toMatch(
      /^MODEL_TRUNCATED: The weight "neg" declares the impossible shape \[-2,3\]/,
    );
    expect(check({ initializer: [{ name: 's', dataType: 8, dims: [2 ** 40] }] })).toBe('accepted');
    expect(check({ initializer: [{ ...w('x', 1, [2 ** 40]), dataLocation: 1 }] })).toBe('accepted');
    expect(
      check({ initializer: [{ ...w('x', 1, [2 ** 40]), externalData: [{ key: 'location', value: 'x.bin' }] }] }),
    ).toBe('accepted');
  });

  it('adds the declared sizes up against MAX_MODEL_BYTES', () => {
    const floats = MAX_MODEL_BYTES / 4;
    expect(check({ initializer: [w('a', 1, [floats / 2]), w('b', 1, [floats / 2])] })).toBe('accepted');
    expect(check({ initializer: [w('a', 1, [floats / 2]), w('b', 1, [floats / 2 + 1])] })).toMatch(
      /^MODEL_TOO_LARGE: The model's weights declare more than 268\.4 MB \("b" alone declares 134\.2 MB\)/,
    );
    expect(check({ initializer: [w('huge', 1, [2 ** 30, 2 ** 30, 2 ** 10])] })).toMatch(
      /"huge" alone declares more than a petabyte/,
    );
  });

  it('accepts MAX_GRAPH_NODES nodes and refuses one more; a model without graph passes', () => {
    const nodes = (n: number) => Array.from({ length: n }, () => ({ opType: 'Relu' }));
    expect(check({ node: nodes(MAX_GRAPH_NODES) })).toBe('accepted');
    expect(check({ node: nodes(MAX_GRAPH_NODES + 1) })).toBe(
      `MODEL_TOO_LARGE: The model's graph has 5,001 nodes, more than the 5,000 this playground handles (image classifiers such as ResNet-152 have about 500). Load a CNN image classifier of ordinary size.`,
    );
    expect(() => checkModelStructure({})).not.toThrow();
  });
});
