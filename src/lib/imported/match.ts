/**
 * Which layer of a float parent is which layer of an imported quantized model, found by
 * graph topology, because exporters rename tensors and nodes freely.
 *
 * Both graphs are reduced to their "significant" nodes: everything except ops a quantizer
 * or an exporter adds, drops or moves (activations that a quantized range absorbs, reshapes,
 * BatchNormalization, bias adds and other ops with one constant operand, Identity). A node
 * is described by a signature (op and, for weighted layers, weight shape, kernel, stride,
 * group; a MatMul with [in, out] weights and a Gemm with [out, in] ones are both
 * "fully connected in→out") and by the significant nodes feeding it. Walking the imported
 * skeleton in topological order, a node matches the one unmatched parent node with its
 * signature whose inputs are the matches of its inputs (Add and Mul in either order); ties
 * are broken by weight similarity. Layers left over are matched by weights alone (same
 * signature, cosine similarity of the weights ≥ 0.9), and the walk repeats, so one
 * unexpected node does not leave everything after it unmatched. What is still left is listed.
 *
 * Tensors are then paired along each matched node's output chain (the pass-through ops after
 * it): the chain ends are the same tensor (what the next layer reads), and the ops between
 * are paired in order where both chains have the same op types (bias adds ignored).
 *
 * Pure graph reading on two float graphs (the imported one as imported/read.ts's skeleton).
 */
import { type Graph, type Node, consumersOf, producerOf } from '../onnx/ir.ts';
import { cosineSimilarity } from '../quant/metrics.ts';

export interface LayerPair {
  /** skeleton node of the imported model */
  imported: string;
  /** node of the parent */
  parent: string;
  how: 'topology' | 'weights';
}

export interface GraphMatch {
  /** weighted layers (Conv / Gemm / MatMul with constant weights), paired, in the imported model's order */
  layers: LayerPair[];
  /** weighted layers of the imported model without a parent layer */
  unmatchedImported: string[];
  /** weighted layers of the parent without an imported layer */
  unmatchedParent: string[];
  /** other significant nodes (joins, pools) without a counterpart, imported side */
  unmatchedOther: string[];
  /** skeleton tensor → parent tensor */
  tensors: Map<string, string>;
}

const PASS = new Set([
  'Relu',
  'Clip',
  'LeakyRelu',
  'Identity',
  'Dropout',
  'Flatten',
  'Reshape',
  'Squeeze',
  'Unsqueeze',
  'BatchNormalization',
  'Cast',
]);
const CONST_PASS = new Set(['Add', 'Sub', 'Mul', 'Div']);
const SHAPE_OPS = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'Constant', 'ConstantOfShape', 'Range']);
const COMMUTATIVE = new Set(['Add', 'Mul', 'Sum', 'Max', 'Min']);

/** The reduced view of one graph (see module header). */
interface View {
  g: Graph;
  /** float activation tensors */
  act: Set<string>;
  producers: Map<string, Node>;
  consumers: Map<string, Node[]>;
  significant: Node[];
  pass: Set<Node>;
}

function isWeighted(g: Graph, n: Node): boolean {
  if (n.opType !== 'Conv' && n.opType !== 'Gemm' && n.opType !== 'MatMul') return false;
  return g.initializers.has(n.inputs[1]) || (n.opType === 'MatMul' && g.initializers.has(n.inputs[0]));
}

function view(g: Graph): View {
  const act = new Set<string>(g.inputs.map((v) => v.name));
  for (const n of g.nodes) {
    if (SHAPE_OPS.has(n.opType)) continue;
    if (n.inputs.some((i) => act.has(i))) for (const o of n.outputs) if (o) act.add(o);
  }
  const pass = new Set<Node>();
  const significant: Node[] = [];
  for (const n of g.nodes) {
    const data = n.inputs.filter((i) => act.has(i));
    if (data.length === 0) continue;
    const constOperand = n.inputs.some((i) => i && !act.has(i));
    if (PASS.has(n.opType) || (CONST_PASS.has(n.opType) && data.length === 1 && constOperand && !isWeighted(g, n)))
      pass.add(n);
    else significant.push(n);
  }
  return { g, act, producers: producerOf(g), consumers: consumersOf(g), significant, pass };
}

/** A weighted layer's weights with their dims, in [out, in, …] layout, and its signature. */
function weightOf(v: View, n: Node): { data: Float32Array; dims: number[] } | undefined {
  const idx = n.opType === 'MatMul' && v.g.initializers.has(n.inputs[0]) && !v.g.initializers.has(n.inputs[1]) ? 0 : 1;
  const t = v.g.initializers.get(n.inputs[idx]);
  if (!t || t.dtype !== 'float32') return undefined;
  const data = t.data as Float32Array;
  const outFirst = n.opType === 'Conv' || (n.opType === 'Gemm' && n.attrs.transB === 1);
  if (outFirst || t.dims.length !== 2) return { data, dims: t.dims };
  const [a, b] = t.dims;
  const tr = new Float32Array(data.length);
  for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) tr[j * a + i] = data[i * b + j];
  return { data: tr, dims: [b, a] };
}

function signature(v: View, n: Node): string {
  if (isWeighted(v.g, n)) {
    const w = weightOf(v, n);
    const dims = w?.dims ?? [];
    if (n.opType === 'Conv') {
      const a = (k: string, d: string) => JSON.stringify(n.attrs[k] ?? d);
      return `Conv|${dims.join('x')}|g${n.attrs.group ?? 1}|s${a('strides', '1')}|d${a('dilations', '1')}`;
    }
    return `FC|${dims.join('x')}`;
  }
  if (n.opType === 'Concat') return `Concat|${n.attrs.axis}`;
  if (n.opType === 'Sum' && n.inputs.length === 2) return 'Add';
  return n.opType;
}

/** The significant node (or graph input) feeding a tensor through pass-through ops. */
function source(v: View, t: string): Node | string | undefined {
  for (let k = 0; k < 64; k++) {
    const p = v.producers.get(t);
    if (!p)
      return v.g.inputs.some((i) => i.name === t) ? `input:${v.g.inputs.findIndex((i) => i.name === t)}` : undefined;
    if (!v.pass.has(p)) return p;
    const next = p.inputs.find((i) => v.act.has(i));
    if (!next) return undefined;
    t = next;
  }
  return undefined;
}

function sources(v: View, n: Node): (Node | string | undefined)[] {
  return n.inputs.filter((i) => v.act.has(i)).map((i) => source(v, i));
}

/** Cosine similarity of two weight tensors; -1 when their sizes differ (no match). */
function cosine(a: Float32Array, b: Float32Array): number {
  return a.length === b.length ? cosineSimilarity(a, b) : -1;
}

/** The pass-through chain after a tensor: [tensor, …] with the op producing each (none for the first). */
function chain(v: View, t: string): { op: string; tensor: string }[] {
  const out = [{ op: '', tensor: t }];
  for (let k = 0; k < 16; k++) {
    const cs = v.consumers.get(t) ?? [];
    if (cs.length !== 1 || !v.pass.has(cs[0])) break;
    t = cs[0].outputs[0];
    out.push({ op: cs[0].opType, tensor: t });
  }
  return out;
}

/**
 * Matches the imported skeleton against the parent (see module header). Both must be float
 * graphs; fold the parent's BatchNormalization first when the imported model has it folded.
 */
export function matchGraphs(imported: Graph, parent: Graph): GraphMatch {
  const S = view(imported);
  const P = view(parent);
  const pairs = new Map<Node, Node>();
  const how = new Map<Node, LayerPair['how']>();
  const used = new Set<Node>();
  const sigP = new Map(P.significant.map((n) => [n, signature(P, n)] as const));
  const weightsP = new Map<Node, Float32Array | undefined>();
  const wP = (n: Node) => {
    if (!weightsP.has(n)) weightsP.set(n, weightOf(P, n)?.data);
    return weightsP.get(n);
  };
  const mapSource = (s: Node | string | undefined): Node | string | undefined =>
    typeof s === 'string' ? s : s ? pairs.get(s) : undefined;
  const key = (x: Node | string | undefined) => (typeof x === 'string' ? x : x ? `n:${P.significant.indexOf(x)}` : '?');

  const topologyPass = () => {
    let added = 0;
    for (const s of S.significant) {
      if (pairs.has(s)) continue;
      const src = sources(S, s).map(mapSource);
      if (src.some((x) => x === undefined)) continue;
      const sig = signature(S, s);
      const want = src.map(key);
      if (COMMUTATIVE.has(s.opType)) want.sort();
      const cands = P.significant.filter((p) => {
        if (used.has(p) || sigP.get(p) !== sig) return false;
        const got = sources(P, p).map(key);
        if (COMMUTATIVE.has(p.opType)) got.sort();
        return got.length === want.length && got.every((k, i) => k === want[i]);
      });
      if (cands.length === 0) continue;
      let best = cands[0];
      if (cands.length > 1 && isWeighted(S.g, s)) {
        const ws = weightOf(S, s)?.data;
        let score = -Infinity;
        for (const c of cands) {
          const w = wP(c);
          const sc = ws && w ? cosine(ws, w) : -1;
          if (sc > score) [score, best] = [sc, c];
        }
      }
      pairs.set(s, best);
      how.set(s, 'topology');
      used.add(best);
      added++;
    }
    return added;
  };
  const weightPass = () => {
    let added = 0;
    for (const s of S.significant) {
      if (pairs.has(s) || !isWeighted(S.g, s)) continue;
      const ws = weightOf(S, s)?.data;
      if (!ws) continue;
      const sig = signature(S, s);
      let best: Node | undefined;
      let score = 0.9;
      for (const p of P.significant) {
        if (used.has(p) || sigP.get(p) !== sig) continue;
        const w = wP(p);
        const sc = w ? cosine(ws, w) : -1;
        if (sc > score) [score, best] = [sc, p];
      }
      if (best) {
        pairs.set(s, best);
        how.set(s, 'weights');
        used.add(best);
        added++;
      }
    }
    return added;
  };
  for (let round = 0; round < 8; round++) {
    topologyPass();
    if (weightPass() === 0) break;
  }

  // tensors along the matched chains
  const tensors = new Map<string, string>();
  const pairChains = (ts: string, tp: string) => {
    const a = chain(S, ts);
    const b = chain(P, tp);
    tensors.set(a[0].tensor, b[0].tensor);
    const norm = (c: typeof a) =>
      c.filter((x, i) => i > 0 && !CONST_PASS.has(x.op) && x.op !== 'Identity' && x.op !== 'Dropout');
    const na = norm(a);
    const nb = norm(b);
    for (let i = 0; i < Math.min(na.length, nb.length) && na[i].op === nb[i].op; i++)
      tensors.set(na[i].tensor, nb[i].tensor);
    // the chain ends (and the tensors before trailing Identity / Dropout ops) are what the next layer reads
    const end = (c: typeof a) => {
      let k = c.length - 1;
      while (k > 0 && (c[k].op === 'Identity' || c[k].op === 'Dropout')) k--;
      return k;
    };
    const ea = end(a);
    const eb = end(b);
    for (let k = ea; k < a.length; k++) tensors.set(a[k].tensor, b[eb].tensor);
  };
  S.g.inputs.forEach((v, i) => {
    if (P.g.inputs[i]) pairChains(v.name, P.g.inputs[i].name);
  });
  for (const [s, p] of pairs) s.outputs.forEach((o, i) => o && p.outputs[i] && pairChains(o, p.outputs[i]));
  S.g.outputs.forEach((o, i) => {
    if (P.g.outputs[i] && !tensors.has(o.name)) tensors.set(o.name, P.g.outputs[i].name);
  });

  const layers: LayerPair[] = [];
  const unmatchedImported: string[] = [];
  const unmatchedOther: string[] = [];
  for (const s of S.significant) {
    const p = pairs.get(s);
    if (isWeighted(S.g, s)) {
      if (p) layers.push({ imported: s.name, parent: p.name, how: how.get(s)! });
      else unmatchedImported.push(s.name);
    } else if (!p) unmatchedOther.push(s.name);
  }
  const unmatchedParent = P.significant.filter((p) => isWeighted(P.g, p) && !used.has(p)).map((p) => p.name);
  return { layers, unmatchedImported, unmatchedParent, unmatchedOther, tensors };
}
