/**
 * Limits on what a model file may ask of a browser tab, checked by size and structure
 * BEFORE anything is decoded or copied: a 300 MB file, a graph of 10,000 nodes or a
 * tensor that declares gigabytes must be refused with a sentence, not by the tab
 * running out of memory half-way through parsing.
 *
 * The size check needs only a byte count, so callers holding a File, a Blob or a
 * Content-Length run it before reading a single byte. The structure check reads the
 * decoded protobuf (whose byte fields are views into the file, not copies) and never
 * copies tensor data itself.
 * Must not: decode tensors, run models, or touch the DOM.
 */
import type onnxProto from 'onnx-proto';
import { QpError } from '../util/errors.ts';

/** Largest model file accepted (bytes): 256 MiB. VGG-16 (528 MB) is refused; ResNet-50 (98 MB) is not. */
export const MAX_MODEL_BYTES = 256 * 1024 * 1024;
/** Most nodes a graph may have. MobileNet-V2 has ~100, EfficientNet-Lite0 ~250, ResNet-152 ~500. */
export const MAX_GRAPH_NODES = 5_000;

const MB = (n: number) => `${(n / 1e6).toLocaleString('en', { maximumFractionDigits: 1 })} MB`;

/**
 * Refuse a model file larger than MAX_MODEL_BYTES. `byteLength` may come from a File,
 * a Content-Length header or a buffer. Throws QpError MODEL_TOO_LARGE.
 */
export function checkModelSize(byteLength: number, name = 'The model file'): void {
  if (byteLength > MAX_MODEL_BYTES) {
    throw new QpError(
      'MODEL_TOO_LARGE',
      `${name === 'The model file' ? name : `The model file "${name}"`} is ${MB(byteLength)}, more than the ${MB(MAX_MODEL_BYTES)} a browser tab can safely parse, quantize and evaluate. Use a smaller classifier (e.g. MobileNet-V2, ResNet-18 or EfficientNet-Lite0), or the command-line bench for this one.`,
    );
  }
}

type LongLike = number | { toNumber(): number };
const num = (v: LongLike | null | undefined): number => (v == null ? 0 : typeof v === 'number' ? v : v.toNumber());

/**
 * Bits per element of every fixed-size ONNX element type (onnx.proto TensorProto.DataType):
 * FLOAT, UINT8, INT8, UINT16, INT16, INT32, INT64, BOOL, FLOAT16, DOUBLE, UINT32, UINT64,
 * COMPLEX64, COMPLEX128, BFLOAT16, the four FLOAT8 types, and UINT4, INT4 and FLOAT4E2M1
 * (packed two to a byte). STRING (8) has no fixed size.
 */
export const ELEMENT_BITS: Readonly<Record<number, number>> = {
  1: 32,
  2: 8,
  3: 8,
  4: 16,
  5: 16,
  6: 32,
  7: 64,
  9: 8,
  10: 16,
  11: 64,
  12: 32,
  13: 64,
  14: 64,
  15: 128,
  16: 16,
  17: 8,
  18: 8,
  19: 8,
  20: 8,
  21: 4,
  22: 4,
  23: 4,
};

/**
 * Declared byte size of a TensorProto from its dims and element type: NaN when a dim is
 * negative or not a whole number, Infinity beyond 2^53. undefined for types of no fixed size.
 */
export function declaredBytes(t: onnxProto.onnx.ITensorProto): number | undefined {
  const bits = ELEMENT_BITS[t.dataType ?? 0];
  if (bits === undefined) return undefined;
  let n = bits;
  for (const d of t.dims ?? []) {
    const v = num(d as LongLike);
    if (!Number.isInteger(v) || v < 0) return NaN;
    n *= v;
  }
  return Number.isSafeInteger(n) ? Math.ceil(n / 8) : Infinity;
}

/**
 * Structural checks on a decoded ModelProto before its tensors are copied: node count,
 * and every initializer's declared size against MAX_MODEL_BYTES and against the raw
 * bytes it actually holds. Throws QpError MODEL_TOO_LARGE or MODEL_TRUNCATED.
 */
export function checkModelStructure(m: onnxProto.onnx.IModelProto): void {
  const g = m.graph;
  if (!g) return;
  const nodes = g.node?.length ?? 0;
  if (nodes > MAX_GRAPH_NODES) {
    throw new QpError(
      'MODEL_TOO_LARGE',
      `The model's graph has ${nodes.toLocaleString('en')} nodes, more than the ${MAX_GRAPH_NODES.toLocaleString('en')} this playground handles (image classifiers such as ResNet-152 have about 500). Load a CNN image classifier of ordinary size.`,
    );
  }
  let total = 0;
  for (const t of g.initializer ?? []) {
    // external data is refused by parseModel with its own message
    if (t.dataLocation === 1 || (t.externalData?.length ?? 0) > 0) continue;
    const need = declaredBytes(t);
    if (need === undefined) continue;
    const name = t.name ?? '';
    if (Number.isNaN(need)) {
      throw new QpError(
        'MODEL_TRUNCATED',
        `The weight "${name}" declares the impossible shape [${(t.dims ?? []).map((d) => num(d as LongLike))}] (a negative or fractional dimension). The file is damaged: download or export it again.`,
      );
    }
    const raw = t.rawData?.byteLength ?? 0;
    if (raw > 0 && raw !== need) {
      throw new QpError(
        'MODEL_TRUNCATED',
        `The weight "${name}" declares shape [${(t.dims ?? []).map((d) => num(d as LongLike))}], which needs ${need.toLocaleString('en')} bytes, but the file holds ${raw.toLocaleString('en')} bytes for it. The file is truncated or damaged: download or export it again.`,
      );
    }
    total += need;
    if (total > MAX_MODEL_BYTES) {
      throw new QpError(
        'MODEL_TOO_LARGE',
        `The model's weights declare more than ${MB(MAX_MODEL_BYTES)} ("${name}" alone declares ${Number.isFinite(need) ? MB(need) : 'more than a petabyte'}), more than a browser tab can safely hold. Use a smaller classifier, or check that the file is not damaged.`,
      );
    }
  }
}
