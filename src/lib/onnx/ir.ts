/**
 * Graph IR: a plain, mutable-by-copy view of an ONNX model that the graph transforms
 * (BN folding, fake-quant insertion, calibration taps) work on, plus small helpers to
 * query and build graphs. Protobuf lives only in model.ts; this module imports no
 * protobuf, no ORT, no DOM and no Node APIs.
 *
 * Conventions: transforms never mutate their input graph; they `cloneGraph` and then
 * replace (never write into) initializer TensorData. Missing optional inputs are ''.
 */
import { QpError } from '../util/errors.ts';

export type DType = 'float32' | 'float16' | 'float64' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool' | 'other';

/** ONNX TensorProto.DataType numbers for our DTypes. */
export const ONNX_TYPE: Record<Exclude<DType, 'other'>, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};

export function dtypeFromOnnx(t: number): DType {
  for (const [k, v] of Object.entries(ONNX_TYPE)) if (v === t) return k as DType;
  return 'other';
}

export type TensorArray = Float32Array | BigInt64Array | Int32Array | Uint8Array | Int8Array | Float64Array;

/**
 * An initializer or tensor attribute. `data` by dtype: float32 Float32Array, float64
 * Float64Array, int64 BigInt64Array, int32 Int32Array, int8 Int8Array, uint8/bool
 * Uint8Array; float16 and 'other' hold the raw little-endian bytes in a Uint8Array.
 */
export interface TensorData {
  name: string;
  dtype: DType;
  dims: number[];
  data: TensorArray;
  /** exact ONNX data type number when dtype is 'other' (or to keep it verbatim) */
  onnxType?: number;
  /** original TensorProto for types stored in no numeric field (e.g. strings); serialized as is */
  raw?: unknown;
}

export type AttrValue = number | string | number[] | string[] | TensorData | { graph: unknown };
export type AttrType = 'float' | 'int' | 'string' | 'floats' | 'ints' | 'strings' | 'tensor' | 'graph';

export interface Node {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
  /**
   * ONNX attribute type per attribute, filled by parseModel. When absent for an
   * attribute, serializeModel infers it (see inferAttrType).
   */
  attrTypes?: Record<string, AttrType>;
  /** attributes of kinds we don't model (TENSORS, GRAPHS, SPARSE_TENSOR, TYPE_PROTO...), raw AttributeProto */
  rawAttrs?: unknown[];
  docString?: string;
}

export interface ValueInfo {
  name: string;
  dtype: DType;
  /** numbers for fixed dims, strings for symbolic dims, null for unknown dims; null when rank unknown */
  shape: (number | string | null)[] | null;
  onnxType?: number;
  /** original ValueInfoProto for non-tensor types (sequences, maps); serialized as is */
  raw?: unknown;
}

export interface OpsetImport {
  domain: string;
  version: number;
}

/** The ModelProto fields outside the graph, kept to re-serialize the model faithfully. */
export interface ModelMeta {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: number;
  docString: string;
  /** all opset imports; the default domain ('' / 'ai.onnx') entry is overridden by Graph.opset */
  opsetImports: OpsetImport[];
  metadataProps: { key: string; value: string }[];
  graphName: string;
  graphDocString: string;
}

export interface Graph {
  /** opset version of the default ONNX domain */
  opset: number;
  /** real inputs only (initializers listed as inputs by old exporters are excluded) */
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** topologically sorted */
  nodes: Node[];
  initializers: Map<string, TensorData>;
  valueInfo: Map<string, ValueInfo>;
  meta: ModelMeta;
}

// ---------------------------------------------------------------- queries

/** Map tensor name → node producing it. */
export function producerOf(g: Graph): Map<string, Node> {
  const m = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) m.set(o, n);
  return m;
}

/** The value of a float32 initializer holding one number, or undefined (absent, other type or size). */
export function floatScalar(g: Graph, name: string | undefined): number | undefined {
  const t = name ? g.initializers.get(name) : undefined;
  if (!t || t.dtype !== 'float32' || t.data.length !== 1) return undefined;
  return Number(t.data[0]);
}

/**
 * A scalar operand of a node that older opsets give as an attribute and newer ones as a
 * constant input (Clip's min and max): the one-number initializer at input `idx`, else the
 * numeric attribute `attr`; undefined when neither is there or the input is not a constant.
 */
export function scalarOperand(g: Graph, node: Node, idx: number, attr: string): number | undefined {
  const name = node.inputs[idx];
  if (name) {
    const t = g.initializers.get(name);
    return t && t.data.length === 1 ? Number(t.data[0]) : undefined;
  }
  const a = node.attrs[attr];
  return typeof a === 'number' ? a : undefined;
}

/** Map tensor name → nodes reading it (in node order; a node reading twice appears once). */
export function consumersOf(g: Graph): Map<string, Node[]> {
  const m = new Map<string, Node[]>();
  for (const n of g.nodes) {
    for (const i of new Set(n.inputs)) {
      if (!i) continue;
      let l = m.get(i);
      if (!l) m.set(i, (l = []));
      l.push(n);
    }
    for (const i of subgraphRefs(n)) {
      let l = m.get(i);
      if (!l) m.set(i, (l = []));
      if (!l.includes(n)) l.push(n);
    }
  }
  return m;
}

/** Shape of a tensor from inputs, outputs, valueInfo or initializers; null when unknown. */
export function shapeOf(g: Graph, tensor: string): (number | string | null)[] | null {
  const init = g.initializers.get(tensor);
  if (init) return [...init.dims];
  const vi =
    g.inputs.find((v) => v.name === tensor) ?? g.valueInfo.get(tensor) ?? g.outputs.find((v) => v.name === tensor);
  return vi?.shape ? [...vi.shape] : null;
}

/** Element type of a tensor when known from inputs, outputs, valueInfo or initializers. */
export function dtypeOf(g: Graph, tensor: string): DType | null {
  const init = g.initializers.get(tensor);
  if (init) return init.dtype;
  const vi =
    g.inputs.find((v) => v.name === tensor) ?? g.valueInfo.get(tensor) ?? g.outputs.find((v) => v.name === tensor);
  return vi ? vi.dtype : null;
}

/** All names in use (tensors, nodes, initializers): what a NameAllocator must avoid. */
export function usedNames(g: Graph): Set<string> {
  const s = new Set<string>();
  for (const v of g.inputs) s.add(v.name);
  for (const v of g.outputs) s.add(v.name);
  for (const k of g.initializers.keys()) s.add(k);
  for (const k of g.valueInfo.keys()) s.add(k);
  for (const n of g.nodes) {
    s.add(n.name);
    for (const t of n.inputs) s.add(t);
    for (const t of n.outputs) s.add(t);
  }
  return s;
}

/** Hands out names unused in a graph and remembers what it handed out. */
export class NameAllocator {
  private used: Set<string>;
  constructor(g: Graph) {
    this.used = usedNames(g);
  }
  take(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }
}

// ---------------------------------------------------------------- copy

function copyTensor(t: TensorData): TensorData {
  return { ...t, dims: [...t.dims], data: t.data.slice() };
}

function copyAttr(v: AttrValue): AttrValue {
  if (Array.isArray(v)) return [...v] as AttrValue;
  if (v && typeof v === 'object' && 'data' in v) return copyTensor(v);
  return v; // numbers, strings, {graph} (subgraphs are never edited)
}

export function cloneNode(n: Node): Node {
  const attrs: Record<string, AttrValue> = {};
  for (const [k, v] of Object.entries(n.attrs)) attrs[k] = copyAttr(v);
  return {
    ...n,
    inputs: [...n.inputs],
    outputs: [...n.outputs],
    attrs,
    ...(n.attrTypes ? { attrTypes: { ...n.attrTypes } } : {}),
    ...(n.rawAttrs ? { rawAttrs: [...n.rawAttrs] } : {}),
  };
}

function cloneVi(v: ValueInfo): ValueInfo {
  return { ...v, shape: v.shape ? [...v.shape] : null };
}

/**
 * Copy a graph. By default initializer arrays are copied too, so the copy can be edited
 * freely. `shareInitializers: true` shares the TensorData objects (cheap; for transforms
 * that only ever replace map entries, never write into arrays).
 */
export function cloneGraph(g: Graph, opts: { shareInitializers?: boolean } = {}): Graph {
  const inits = new Map<string, TensorData>();
  for (const [k, t] of g.initializers) inits.set(k, opts.shareInitializers ? t : copyTensor(t));
  const vi = new Map<string, ValueInfo>();
  for (const [k, v] of g.valueInfo) vi.set(k, cloneVi(v));
  return {
    opset: g.opset,
    inputs: g.inputs.map(cloneVi),
    outputs: g.outputs.map(cloneVi),
    nodes: g.nodes.map(cloneNode),
    initializers: inits,
    valueInfo: vi,
    meta: {
      ...g.meta,
      opsetImports: g.meta.opsetImports.map((o) => ({ ...o })),
      metadataProps: g.meta.metadataProps.map((p) => ({ ...p })),
    },
  };
}

// ---------------------------------------------------------------- topological order

/** Tensor names a node's subgraphs (If/Loop/Scan bodies) read from the outer scope. */
export function subgraphRefs(n: Node): string[] {
  const out: string[] = [];
  for (const v of Object.values(n.attrs)) {
    if (v && typeof v === 'object' && 'graph' in v) collectOuterRefs(v.graph, out);
  }
  return out;
}

// Walks a raw GraphProto-like object ({node:[{input,output,attribute}], input, initializer}).
function collectOuterRefs(graph: unknown, out: string[]): void {
  const gp = graph as {
    node?: { input?: string[]; output?: string[]; attribute?: { g?: unknown; graphs?: unknown[] }[] }[];
    input?: { name?: string }[];
    initializer?: { name?: string }[];
  };
  const local = new Set<string>();
  for (const i of gp.input ?? []) if (i.name) local.add(i.name);
  for (const i of gp.initializer ?? []) if (i.name) local.add(i.name);
  for (const n of gp.node ?? []) for (const o of n.output ?? []) local.add(o);
  const inner: string[] = [];
  for (const n of gp.node ?? []) {
    for (const i of n.input ?? []) if (i) inner.push(i);
    for (const a of n.attribute ?? []) {
      if (a.g) collectOuterRefs(a.g, inner);
      for (const sg of a.graphs ?? []) collectOuterRefs(sg, inner);
    }
  }
  for (const i of inner) if (!local.has(i) && !out.includes(i)) out.push(i);
}

/**
 * Nodes in topological order, keeping the file's order wherever it is already valid
 * (stable Kahn). Throws QpError MODEL_UNSUPPORTED on a cycle, MODEL_TRUNCATED when a node
 * reads a tensor nothing provides.
 */
export function topoSort(g: Pick<Graph, 'nodes' | 'inputs' | 'initializers'>): Node[] {
  const nodes = g.nodes;
  const available = new Set<string>(['']);
  for (const v of g.inputs) available.add(v.name);
  for (const k of g.initializers.keys()) available.add(k);
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => n.outputs.forEach((o) => o && producer.set(o, i)));

  const deps: number[][] = nodes.map(() => []);
  const users: number[][] = nodes.map(() => []);
  nodes.forEach((n, i) => {
    for (const t of [...n.inputs, ...subgraphRefs(n)]) {
      if (available.has(t)) continue;
      const p = producer.get(t);
      if (p === undefined) {
        if (!n.inputs.includes(t)) continue; // outer-scope ref of a subgraph to its own locals
        throw new QpError(
          'MODEL_TRUNCATED',
          `Node "${n.name || n.opType}" reads tensor "${t}", which no node, input or initializer provides. The file may be truncated or damaged: export the model again.`,
        );
      }
      if (p !== i) {
        deps[i].push(p);
        users[p].push(i);
      }
    }
  });

  // Fast path: already sorted.
  if (deps.every((d, i) => d.every((p) => p < i))) return [...nodes];

  const missing = deps.map((d) => new Set(d).size);
  const seenUsers = users.map((u) => [...new Set(u)]);
  const ready: number[] = [];
  missing.forEach((m, i) => m === 0 && ready.push(i));
  const order: Node[] = [];
  while (ready.length) {
    // smallest original index first: keeps the file's order where possible
    let best = 0;
    for (let k = 1; k < ready.length; k++) if (ready[k] < ready[best]) best = k;
    const i = ready.splice(best, 1)[0];
    order.push(nodes[i]);
    for (const u of seenUsers[i]) if (--missing[u] === 0) ready.push(u);
  }
  if (order.length !== nodes.length) {
    throw new QpError(
      'MODEL_UNSUPPORTED',
      'The model graph contains a cycle, so it cannot be run or quantized. Check the export.',
    );
  }
  return order;
}

/** Drop initializers that no node, subgraph or graph output references. */
export function pruneInitializers(g: Graph): void {
  const used = new Set<string>();
  for (const n of g.nodes) {
    for (const i of n.inputs) used.add(i);
    for (const i of subgraphRefs(n)) used.add(i);
  }
  for (const o of g.outputs) used.add(o.name);
  for (const k of [...g.initializers.keys()]) if (!used.has(k)) g.initializers.delete(k);
}

// ---------------------------------------------------------------- builders

/** Attribute names whose value is a FLOAT in the ONNX ops we touch (an integral JS number is ambiguous). */
const FLOAT_ATTRS = new Set([
  'alpha',
  'beta',
  'gamma',
  'epsilon',
  'momentum',
  'min',
  'max',
  'bias',
  'lambd',
  'ratio',
  'spatial_scale',
  'value_float',
  'scale',
  'mean',
  'threshold',
  'high',
  'low',
  'cubic_coeff_a',
  'extrapolation_value',
  'seed',
]);

/** ONNX attribute type for a value when the node records none. */
export function inferAttrType(name: string, v: AttrValue): AttrType {
  if (typeof v === 'number') return FLOAT_ATTRS.has(name) || !Number.isInteger(v) ? 'float' : 'int';
  if (typeof v === 'string') return 'string';
  if (Array.isArray(v)) {
    if (v.length && typeof v[0] === 'string') return 'strings';
    if (name === 'value_floats' || name === 'scales' || (v as number[]).some((x) => !Number.isInteger(x)))
      return 'floats';
    return 'ints';
  }
  if ('graph' in v) return 'graph';
  return 'tensor';
}

/** A node; the default name is derived from the op type and first output (deterministic). */
export function makeNode(
  opType: string,
  inputs: string[],
  outputs: string[],
  attrs: Record<string, AttrValue> = {},
  opts: { name?: string; domain?: string; attrTypes?: Record<string, AttrType> } = {},
): Node {
  return {
    name: opts.name ?? `${opType}_${outputs[0] ?? ''}`,
    opType,
    domain: opts.domain ?? '',
    inputs,
    outputs,
    attrs,
    ...(opts.attrTypes ? { attrTypes: opts.attrTypes } : {}),
  };
}

/** A tensor; plain number arrays become float32 (or the given dtype). */
export function makeTensor(
  name: string,
  dims: number[],
  data: TensorArray | number[] | bigint[],
  dtype?: DType,
): TensorData {
  let arr: TensorArray;
  if (Array.isArray(data)) {
    const dt = dtype ?? 'float32';
    const src = data as (number | bigint)[];
    switch (dt) {
      case 'float32':
        arr = Float32Array.from(src, Number);
        break;
      case 'float64':
        arr = Float64Array.from(src, Number);
        break;
      case 'int64':
        arr = BigInt64Array.from(src, (x) => BigInt(x));
        break;
      case 'int32':
        arr = Int32Array.from(src, Number);
        break;
      case 'int8':
        arr = Int8Array.from(src, Number);
        break;
      case 'uint8':
      case 'bool':
        arr = Uint8Array.from(src, Number);
        break;
      default:
        throw new QpError('INTERNAL', `makeTensor cannot build dtype ${dt} from a number array.`);
    }
    dtype = dt;
  } else {
    arr = data;
    dtype ??=
      data instanceof Float32Array
        ? 'float32'
        : data instanceof Float64Array
          ? 'float64'
          : data instanceof BigInt64Array
            ? 'int64'
            : data instanceof Int32Array
              ? 'int32'
              : data instanceof Int8Array
                ? 'int8'
                : 'uint8';
  }
  const count = dims.reduce((a, b) => a * b, 1);
  if (dtype !== 'float16' && dtype !== 'other' && arr.length !== count) {
    throw new QpError('INTERNAL', `Tensor "${name}" has ${arr.length} values but dims [${dims}] need ${count}.`);
  }
  return { name, dtype, dims: [...dims], data: arr };
}

export function makeValueInfo(
  name: string,
  shape: (number | string | null)[] | null,
  dtype: DType = 'float32',
): ValueInfo {
  return { name, dtype, shape };
}

export function defaultMeta(opset: number): ModelMeta {
  return {
    irVersion: irVersionFor(opset),
    producerName: 'quantization-playground',
    producerVersion: '',
    domain: '',
    modelVersion: 0,
    docString: '',
    opsetImports: [{ domain: '', version: opset }],
    metadataProps: [],
    graphName: 'graph',
    graphDocString: '',
  };
}

/** Lowest IR version that carries a given default-domain opset (ONNX versioning table). */
export function irVersionFor(opset: number): number {
  if (opset <= 8) return 3; // opset 7-8 → IR 3
  if (opset <= 9) return 4;
  if (opset <= 10) return 5;
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

/** Build a graph in code (tests, model builders). Nodes are topologically sorted. */
export function makeGraph(spec: {
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  nodes: Node[];
  initializers?: TensorData[];
  valueInfo?: ValueInfo[];
  opset?: number;
  name?: string;
}): Graph {
  const opset = spec.opset ?? 13;
  const initializers = new Map((spec.initializers ?? []).map((t) => [t.name, t] as const));
  const meta = defaultMeta(opset);
  if (spec.name) meta.graphName = spec.name;
  const g: Graph = {
    opset,
    inputs: spec.inputs,
    outputs: spec.outputs,
    nodes: spec.nodes,
    initializers,
    valueInfo: new Map((spec.valueInfo ?? []).map((v) => [v.name, v] as const)),
    meta,
  };
  g.nodes = topoSort(g);
  return g;
}
