/**
 * BatchNormalization folding: merge an inference-mode BN into the Conv (or Gemm) that
 * feeds it, as deployment toolchains do before quantizing, so weight quantization sees
 * the folded weights. Returns a new graph; never mutates the input graph or its arrays.
 * It must not change what the graph computes beyond float rounding (folding is done
 * in float64 and stored as float32).
 */
import {
  type Graph,
  type Node,
  type TensorData,
  NameAllocator,
  cloneGraph,
  consumersOf,
  pruneInitializers,
} from './ir.ts';

export interface FoldResult {
  graph: Graph;
  /** BN nodes merged into a Conv/Gemm */
  folded: number;
  /** BN nodes left in the graph (not after a foldable Conv/Gemm) */
  remaining: number;
}

function f64(t: TensorData): Float64Array | null {
  if (t.dtype === 'float32' || t.dtype === 'float64') return Float64Array.from(t.data as Float32Array | Float64Array);
  return null;
}

/**
 * Fold every BatchNormalization whose input is the only use of a Conv or Gemm output:
 * W' = W·γ/√(σ²+ε) per output channel, b' = (b − μ)·γ/√(σ²+ε) + β. Conv includes grouped
 * and depthwise (output channels are axis 0 of W in every case). Gemm folds when B is
 * an initializer, alpha applies as usual, and C is absent or broadcasts per column.
 * The Conv/Gemm then writes the BN's output tensor; BN and unused initializers go.
 */
export function foldBatchNorm(g: Graph): FoldResult {
  const out = cloneGraph(g, { shareInitializers: true });
  const names = new NameAllocator(out);
  const consumers = consumersOf(out);
  const producer = new Map<string, Node>();
  for (const n of out.nodes) for (const o of n.outputs) producer.set(o, n);
  const graphOutputs = new Set(out.outputs.map((o) => o.name));
  // how many nodes read each initializer (a shared weight must not be overwritten in place)
  const useCount = (t: string) => consumers.get(t)?.length ?? 0;

  const removed = new Set<Node>();
  let folded = 0;
  let remaining = 0;

  for (const bn of out.nodes) {
    if (bn.opType !== 'BatchNormalization' || bn.domain !== '') continue;
    const ok = tryFold(bn);
    if (ok) folded++;
    else remaining++;
  }
  out.nodes = out.nodes.filter((n) => !removed.has(n));
  pruneInitializers(out);
  return { graph: out, folded, remaining };

  function tryFold(bn: Node): boolean {
    const [x, sName, bName, mName, vName] = bn.inputs;
    // training-mode BN (extra outputs used) or the old non-spatial variant: leave it
    if (bn.outputs.slice(1).some((o) => o)) return false;
    if (bn.attrs.spatial === 0) return false;
    if (bn.attrs.training_mode === 1) return false;
    const p = producer.get(x);
    if (!p || (p.opType !== 'Conv' && p.opType !== 'Gemm') || p.domain !== '') return false;
    if (useCount(x) !== 1 || graphOutputs.has(x)) return false;
    const inits = [sName, bName, mName, vName].map((n) => out.initializers.get(n));
    if (inits.some((t) => !t)) return false;
    const [gamma, beta, mean, variance] = inits.map((t) => f64(t as TensorData));
    if (!gamma || !beta || !mean || !variance) return false;
    // ONNX stores epsilon as float32; use that value whether or not the graph went through protobuf
    const eps = Math.fround(typeof bn.attrs.epsilon === 'number' ? bn.attrs.epsilon : 1e-5);
    const C = gamma.length;
    const k = new Float64Array(C);
    for (let c = 0; c < C; c++) k[c] = gamma[c] / Math.sqrt(variance[c] + eps);

    const wName = p.inputs[1];
    const W = out.initializers.get(wName);
    if (!W || W.dtype !== 'float32') return false;

    let newW: Float32Array;
    let bias: Float64Array;
    const wd = W.data as Float32Array;
    if (p.opType === 'Conv') {
      if (W.dims[0] !== C) return false;
      const per = wd.length / C;
      newW = new Float32Array(wd.length);
      for (let c = 0; c < C; c++) for (let j = 0; j < per; j++) newW[c * per + j] = wd[c * per + j] * k[c];
      bias = new Float64Array(C);
      const b = p.inputs[2] ? out.initializers.get(p.inputs[2]) : undefined;
      if (p.inputs[2] && !b) return false;
      if (b) {
        const bd = f64(b);
        if (!bd || bd.length !== C) return false;
        bias.set(bd);
      }
    } else {
      // Gemm: Y = alpha·A'·B' + beta·C with B' = B or Bᵀ; output columns are BN channels.
      const transB = p.attrs.transB === 1;
      if (W.dims.length !== 2) return false;
      const [r, cols] = W.dims;
      const nOut = transB ? r : cols;
      if (nOut !== C) return false;
      newW = new Float32Array(wd.length);
      for (let i = 0; i < r; i++)
        for (let j = 0; j < cols; j++) newW[i * cols + j] = wd[i * cols + j] * k[transB ? i : j];
      const betaAttr = typeof p.attrs.beta === 'number' ? p.attrs.beta : 1;
      bias = new Float64Array(C);
      const cName = p.inputs[2];
      if (cName) {
        const ct = out.initializers.get(cName);
        if (!ct) return false;
        const cd = f64(ct);
        if (!cd) return false;
        const n = cd.length;
        const rows = ct.dims.length === 2 ? ct.dims[0] : 1;
        if (rows !== 1 || (n !== 1 && n !== C)) return false;
        for (let c = 0; c < C; c++) bias[c] = betaAttr * cd[n === 1 ? 0 : c];
      }
    }
    const newB = new Float32Array(C);
    for (let c = 0; c < C; c++) newB[c] = (bias[c] - mean[c]) * k[c] + beta[c];

    // Replace weights: in place when only this node reads them, else under a new name.
    const wTarget = useCount(wName) === 1 && !graphOutputs.has(wName) ? wName : names.take(`${wName}_bnfold`);
    out.initializers.set(wTarget, { name: wTarget, dtype: 'float32', dims: [...W.dims], data: newW });
    p.inputs[1] = wTarget;
    const oldB = p.inputs[2];
    const bTarget =
      oldB && useCount(oldB) === 1 && !graphOutputs.has(oldB) ? oldB : names.take(`${p.name || 'node'}_bias_bnfold`);
    out.initializers.set(bTarget, { name: bTarget, dtype: 'float32', dims: [C], data: newB });
    if (p.opType === 'Conv') p.inputs[2] = bTarget;
    else {
      while (p.inputs.length < 3) p.inputs.push('');
      p.inputs[2] = bTarget;
      p.attrs.beta = 1;
      if (p.attrTypes) p.attrTypes.beta = 'float';
    }
    // The Conv/Gemm now produces the BN output; its old output tensor disappears.
    out.valueInfo.delete(x);
    p.outputs[0] = bn.outputs[0];
    removed.add(bn);
    return true;
  }
}
