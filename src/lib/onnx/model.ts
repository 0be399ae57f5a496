/**
 * ONNX bytes ⇄ Graph IR, through the `onnx-proto` package (never a hand-written protobuf
 * reader). The only module that touches protobuf. It must not run models, reach the
 * file system or the DOM: it gets bytes and returns bytes.
 *
 * Byte order: raw tensor data is little-endian; we copy it into fresh typed arrays
 * (protobuf buffers are unaligned views), which assumes a little-endian host (every
 * browser and Node platform we target).
 */
import onnxProto from 'onnx-proto';
import { QpError } from '../util/errors.ts';
import { checkModelSize, checkModelStructure, declaredBytes } from './limits.ts';
import {
  type AttrType,
  type AttrValue,
  type Graph,
  type ModelMeta,
  type Node,
  type TensorArray,
  type TensorData,
  type ValueInfo,
  ONNX_TYPE,
  dtypeFromOnnx,
  inferAttrType,
  irVersionFor,
  topoSort,
} from './ir.ts';

const { onnx } = onnxProto;

type LongLike = number | { toNumber(): number; toString(): string };

/** protobufjs gives int64 fields as Long objects in Node, plain numbers in some bundles. */
function num(v: LongLike | null | undefined): number {
  if (v == null) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}
function big(v: LongLike): bigint {
  return typeof v === 'number' ? BigInt(v) : BigInt(v.toString());
}

const utf8 = new TextDecoder();
const utf8enc = new TextEncoder();

// ---------------------------------------------------------------- parse

/** What a non-ONNX file looks like, from its first bytes (for the error message). */
function sniff(b: Uint8Array): string {
  const s = (n: number) => String.fromCharCode(...b.subarray(0, n));
  if (b[0] === 0xff && b[1] === 0xd8) return 'it looks like a JPEG image';
  if (s(4) === '\x89PNG') return 'it looks like a PNG image';
  if (s(2) === 'PK') return 'it looks like a ZIP archive, e.g. a PyTorch .pt/.pth checkpoint';
  if (s(4) === 'GIF8') return 'it looks like a GIF image';
  if (s(5) === '%PDF-') return 'it looks like a PDF document';
  if (s(6) === 'TFL3' || s(8).slice(4) === 'TFL3') return 'it looks like a TensorFlow Lite model';
  if (s(1) === '<') return 'it looks like an HTML or XML page';
  if (s(1) === '{' || s(1) === '[') return 'it looks like a JSON file';
  const head = b.subarray(0, 512);
  if (head.length && head.every((c) => c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127)))
    return 'it looks like a text file';
  return 'its content is not an onnx.ModelProto';
}

function notOnnx(bytes: Uint8Array, detail?: string): QpError {
  return new QpError(
    'MODEL_NOT_ONNX',
    `File is not an ONNX model (${detail ?? sniff(bytes)}). Export your network with torch.onnx.export or tf2onnx and choose the .onnx file.`,
  );
}

type TP = onnxProto.onnx.ITensorProto;

function copyBytes(src: Uint8Array): ArrayBuffer {
  const out = new Uint8Array(src.byteLength);
  out.set(src);
  return out.buffer;
}

/**
 * Values a TensorProto of ONNX element type `t` keeps in its typed field (not raw_data), per
 * element, by field (onnx.proto): int32_data for the small integer, float16, bfloat16 and
 * float8 types, uint64_data for UINT32/UINT64, float_data for COMPLEX64 (two floats each),
 * double_data for COMPLEX128; the 4-bit types pack two values into each int32. STRING is
 * checked by its count below.
 */
const TYPED_FIELD: Partial<
  Record<number, { field: 'int32Data' | 'uint64Data' | 'floatData' | 'doubleData'; per: number }>
> = {
  4: { field: 'int32Data', per: 1 },
  5: { field: 'int32Data', per: 1 },
  12: { field: 'uint64Data', per: 1 },
  13: { field: 'uint64Data', per: 1 },
  14: { field: 'floatData', per: 2 },
  15: { field: 'doubleData', per: 2 },
  16: { field: 'int32Data', per: 1 },
  17: { field: 'int32Data', per: 1 },
  18: { field: 'int32Data', per: 1 },
  19: { field: 'int32Data', per: 1 },
  20: { field: 'int32Data', per: 1 },
  21: { field: 'int32Data', per: 0.5 },
  22: { field: 'int32Data', per: 0.5 },
  23: { field: 'int32Data', per: 0.5 },
};

function truncated(name: string, where: string, dims: number[], holds: string, needs: string): QpError {
  return new QpError(
    'MODEL_TRUNCATED',
    `Tensor "${name}" (${where}) holds ${holds} but its shape [${dims}] needs ${needs}. The file is truncated or damaged: download or export it again.`,
  );
}

/** Decode a TensorProto into TensorData (copying out of the protobuf buffer). */
function decodeTensor(t: TP, where: string): TensorData {
  const name = t.name ?? '';
  const onnxType = t.dataType ?? 0;
  const dtype = dtypeFromOnnx(onnxType);
  const dims = (t.dims ?? []).map((d) => num(d as LongLike));
  const count = dims.reduce((a, b) => a * b, 1);
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData && t.externalData.length > 0)) {
    throw new QpError(
      'MODEL_EXTERNAL_DATA',
      `The model keeps the weights of "${name}" (${where}) in a separate external-data file, which cannot be loaded from one uploaded file. Save the model as a single file, e.g. onnx.save(model, path, save_as_external_data=False), and choose that file.`,
    );
  }
  const raw = t.rawData && t.rawData.length ? t.rawData : null;
  let data: TensorArray;
  if (raw) {
    // every fixed-size element type, the ones kept as raw bytes ('other') included
    const need = declaredBytes(t);
    if (need !== undefined && raw.byteLength !== need)
      throw truncated(
        name,
        where,
        dims,
        `${raw.byteLength} bytes`,
        Number.isFinite(need) ? `${need}` : 'an impossible size',
      );
    const buf = copyBytes(raw);
    switch (dtype) {
      case 'float32':
        data = new Float32Array(buf);
        break;
      case 'float64':
        data = new Float64Array(buf);
        break;
      case 'int64':
        data = new BigInt64Array(buf);
        break;
      case 'int32':
        data = new Int32Array(buf);
        break;
      case 'int8':
        data = new Int8Array(buf);
        break;
      default:
        data = new Uint8Array(buf); // uint8, bool, float16, other: raw bytes
    }
    return { name, dtype, dims, data, ...(dtype === 'other' ? { onnxType } : {}) };
  }
  const f = t.floatData ?? [];
  const i32 = t.int32Data ?? [];
  const i64 = t.int64Data ?? [];
  const f64 = t.doubleData ?? [];
  switch (dtype) {
    case 'float32':
      data = Float32Array.from(f);
      break;
    case 'float64':
      data = Float64Array.from(f64);
      break;
    case 'int64':
      data = BigInt64Array.from(i64 as LongLike[], big);
      break;
    case 'int32':
      data = Int32Array.from(i32);
      break;
    case 'int8':
      data = Int8Array.from(i32);
      break;
    case 'uint8':
    case 'bool':
      data = Uint8Array.from(i32);
      break;
    case 'float16': {
      // float16 bits are stored one per int32 element
      if (i32.length !== count) throw truncated(name, where, dims, `${i32.length} values`, `${count}`);
      const u16 = Uint16Array.from(i32);
      return { name, dtype, dims, data: new Uint8Array(u16.buffer) };
    }
    default: {
      // int16, uint64, strings, ...: keep the proto verbatim, once its typed field holds every value
      const typed = TYPED_FIELD[onnxType];
      const held = typed ? (t[typed.field]?.length ?? 0) : onnxType === 8 ? (t.stringData?.length ?? 0) : undefined;
      const need = Math.ceil(count * (typed?.per ?? 1));
      if (held !== undefined && held !== need) throw truncated(name, where, dims, `${held} values`, `${need}`);
      return { name, dtype, dims, data: new Uint8Array(0), onnxType, raw: t };
    }
  }
  if (data.length !== count) throw truncated(name, where, dims, `${data.length} values`, `${count}`);
  return { name, dtype, dims, data };
}

type VIP = onnxProto.onnx.IValueInfoProto;

function decodeValueInfo(v: VIP): ValueInfo {
  const name = v.name ?? '';
  const tt = v.type?.tensorType;
  if (!tt) return { name, dtype: 'other', shape: null, raw: v };
  const onnxType = tt.elemType ?? 0;
  const dtype = dtypeFromOnnx(onnxType);
  const shape = tt.shape
    ? (tt.shape.dim ?? []).map((d) => {
        if (d.dimParam) return d.dimParam;
        if (d.dimValue != null && Object.prototype.hasOwnProperty.call(d, 'dimValue'))
          return num(d.dimValue as LongLike);
        return null;
      })
    : null;
  return { name, dtype, shape, ...(dtype === 'other' ? { onnxType } : {}) };
}

const AT = onnx.AttributeProto.AttributeType;

function decodeNode(n: onnxProto.onnx.INodeProto, index: number): Node {
  const attrs: Record<string, AttrValue> = {};
  const attrTypes: Record<string, AttrType> = {};
  const rawAttrs: unknown[] = [];
  const name = n.name ?? '';
  for (const a of n.attribute ?? []) {
    const an = a.name ?? '';
    switch (a.type) {
      case AT.FLOAT:
        attrs[an] = a.f ?? 0;
        attrTypes[an] = 'float';
        break;
      case AT.INT:
        attrs[an] = num(a.i as LongLike);
        attrTypes[an] = 'int';
        break;
      case AT.STRING:
        attrs[an] = utf8.decode(a.s ?? new Uint8Array(0));
        attrTypes[an] = 'string';
        break;
      case AT.FLOATS:
        attrs[an] = [...(a.floats ?? [])];
        attrTypes[an] = 'floats';
        break;
      case AT.INTS:
        attrs[an] = (a.ints ?? []).map((x) => num(x as LongLike));
        attrTypes[an] = 'ints';
        break;
      case AT.STRINGS:
        attrs[an] = (a.strings ?? []).map((s) => utf8.decode(s));
        attrTypes[an] = 'strings';
        break;
      case AT.TENSOR:
        attrs[an] = decodeTensor(a.t ?? {}, `attribute ${an} of node ${name}`);
        attrTypes[an] = 'tensor';
        break;
      case AT.GRAPH:
        attrs[an] = { graph: a.g };
        attrTypes[an] = 'graph';
        break;
      default:
        rawAttrs.push(a);
    }
  }
  return {
    name: name || `${n.opType}_${index}`,
    opType: n.opType ?? '',
    domain: n.domain ?? '',
    inputs: [...(n.input ?? [])],
    outputs: [...(n.output ?? [])],
    attrs,
    attrTypes,
    ...(rawAttrs.length ? { rawAttrs } : {}),
    ...(n.docString ? { docString: n.docString } : {}),
  };
}

/**
 * Parse ONNX model bytes. Initializers become typed arrays; nodes are returned in
 * topological order; graph inputs exclude initializers. Unnamed nodes get `<op>_<index>`.
 * Throws QpError MODEL_EMPTY, MODEL_NOT_ONNX, MODEL_TRUNCATED, MODEL_EXTERNAL_DATA,
 * MODEL_NO_GRAPH (a graph without nodes), MODEL_UNSUPPORTED (a cycle), MODEL_TOO_LARGE
 * (file, node count or declared weights over the limits in limits.ts, checked before any
 * tensor is copied).
 */
export function parseModel(bytes: Uint8Array): Graph {
  if (!bytes || bytes.byteLength === 0) {
    throw new QpError(
      'MODEL_EMPTY',
      'The model file is empty (0 bytes). Choose the .onnx file again; if it was downloaded, download it again.',
    );
  }
  checkModelSize(bytes.byteLength);
  let m: onnxProto.onnx.ModelProto;
  try {
    m = onnx.ModelProto.decode(bytes);
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    // ONNX files begin with field 1 (ir_version, varint): tag byte 0x08.
    if (/index out of range/i.test(msg) && bytes[0] === 0x08) {
      throw new QpError(
        'MODEL_TRUNCATED',
        `The model file ends early (${bytes.byteLength} bytes; decoder: ${msg}). It is truncated: download or export it again.`,
      );
    }
    throw notOnnx(bytes, bytes[0] === 0x08 ? `protobuf decoding failed: ${msg}` : undefined);
  }
  const opsets = (m.opsetImport ?? []).map((o) => ({ domain: o.domain ?? '', version: num(o.version as LongLike) }));
  if (!m.graph || opsets.length === 0) throw notOnnx(bytes, !m.graph && opsets.length ? 'it has no graph' : undefined);
  // Byte fields of the decoded proto are views into `bytes`: nothing is copied until here.
  checkModelStructure(m);
  const gp = m.graph;
  const def = opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  const nodesRaw = gp.node ?? [];
  if (nodesRaw.length === 0) {
    throw new QpError(
      'MODEL_NO_GRAPH',
      "The model's graph has no nodes, so there is nothing to run. Export the trained network again.",
    );
  }

  const initializers = new Map<string, TensorData>();
  for (const t of gp.initializer ?? []) {
    const td = decodeTensor(t, 'initializer');
    initializers.set(td.name, td);
  }
  const valueInfo = new Map<string, ValueInfo>();
  for (const v of gp.valueInfo ?? []) {
    const vi = decodeValueInfo(v);
    valueInfo.set(vi.name, vi);
  }
  const meta: ModelMeta = {
    irVersion: num(m.irVersion as LongLike),
    producerName: m.producerName ?? '',
    producerVersion: m.producerVersion ?? '',
    domain: m.domain ?? '',
    modelVersion: num(m.modelVersion as LongLike),
    docString: m.docString ?? '',
    opsetImports: opsets,
    metadataProps: (m.metadataProps ?? []).map((p) => ({ key: p.key ?? '', value: p.value ?? '' })),
    graphName: gp.name ?? '',
    graphDocString: gp.docString ?? '',
  };
  const g: Graph = {
    opset: def ? def.version : 1,
    inputs: (gp.input ?? []).map(decodeValueInfo).filter((v) => !initializers.has(v.name)),
    outputs: (gp.output ?? []).map(decodeValueInfo),
    nodes: nodesRaw.map(decodeNode),
    initializers,
    valueInfo,
    meta,
  };
  g.nodes = topoSort(g);
  return g;
}

// ---------------------------------------------------------------- serialize

function tensorBytes(a: TensorArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function encodeTensor(t: TensorData): onnxProto.onnx.ITensorProto {
  if (t.raw) return { ...(t.raw as TP), name: t.name };
  const dataType = t.dtype === 'other' ? (t.onnxType ?? 0) : ONNX_TYPE[t.dtype];
  return { name: t.name, dims: t.dims, dataType, rawData: tensorBytes(t.data) };
}

function encodeValueInfo(v: ValueInfo): VIP {
  if (v.raw) return { ...(v.raw as VIP), name: v.name };
  const elemType = v.dtype === 'other' ? (v.onnxType ?? 0) : ONNX_TYPE[v.dtype];
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType,
        ...(v.shape
          ? {
              shape: {
                dim: v.shape.map((d) =>
                  typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {},
                ),
              },
            }
          : {}),
      },
    },
  };
}

function encodeAttr(name: string, v: AttrValue, type: AttrType): onnxProto.onnx.IAttributeProto {
  switch (type) {
    case 'float':
      return { name, type: AT.FLOAT, f: v as number };
    case 'int':
      return { name, type: AT.INT, i: v as number };
    case 'string':
      return { name, type: AT.STRING, s: utf8enc.encode(v as string) };
    case 'floats':
      return { name, type: AT.FLOATS, floats: v as number[] };
    case 'ints':
      return { name, type: AT.INTS, ints: v as number[] };
    case 'strings':
      return { name, type: AT.STRINGS, strings: (v as string[]).map((s) => utf8enc.encode(s)) };
    case 'tensor':
      return { name, type: AT.TENSOR, t: encodeTensor(v as TensorData) };
    case 'graph':
      return { name, type: AT.GRAPH, g: (v as { graph: onnxProto.onnx.IGraphProto }).graph };
  }
}

function encodeNode(n: Node): onnxProto.onnx.INodeProto {
  const attribute: onnxProto.onnx.IAttributeProto[] = Object.entries(n.attrs).map(([k, v]) =>
    encodeAttr(k, v, n.attrTypes?.[k] ?? inferAttrType(k, v)),
  );
  for (const a of n.rawAttrs ?? []) attribute.push(a as onnxProto.onnx.IAttributeProto);
  return {
    name: n.name,
    opType: n.opType,
    domain: n.domain,
    input: n.inputs,
    output: n.outputs,
    attribute,
    ...(n.docString ? { docString: n.docString } : {}),
  };
}

/**
 * Serialize a Graph to ONNX bytes. Initializers are written as raw_data and also listed
 * nowhere else (not as graph inputs). The default-domain opset import is g.opset; the
 * IR version is raised if that opset needs a newer one.
 */
export function serializeModel(g: Graph): Uint8Array {
  const imports = g.meta.opsetImports.filter((o) => o.domain !== '' && o.domain !== 'ai.onnx');
  imports.unshift({ domain: '', version: g.opset });
  // Custom-domain ops (e.g. com.microsoft) need an import entry; keep the original ones.
  const model: onnxProto.onnx.IModelProto = {
    // IR < 4 requires initializers to be listed as inputs; we never list them, so write ≥ 4.
    irVersion: Math.max(g.meta.irVersion, irVersionFor(g.opset), 4),
    producerName: g.meta.producerName,
    producerVersion: g.meta.producerVersion,
    domain: g.meta.domain,
    modelVersion: g.meta.modelVersion,
    docString: g.meta.docString,
    opsetImport: imports,
    metadataProps: g.meta.metadataProps,
    graph: {
      name: g.meta.graphName || 'graph',
      docString: g.meta.graphDocString,
      node: g.nodes.map(encodeNode),
      initializer: [...g.initializers.values()].map(encodeTensor),
      input: g.inputs.map(encodeValueInfo),
      output: g.outputs.map(encodeValueInfo),
      valueInfo: [...g.valueInfo.values()].map(encodeValueInfo),
    },
  };
  return onnx.ModelProto.encode(model).finish();
}
