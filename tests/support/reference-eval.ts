/**
 * A plain TypeScript evaluator of small float ONNX graphs, so unit tests can compare a
 * rewritten graph's outputs with the original's without an engine session (the unit tier
 * has none). Each op follows the ONNX operator spec; element-wise results are rounded to
 * float32 after every op as onnxruntime's float kernels store them, while Conv, Gemm and
 * MatMul sum in float64 (so results match the engine to float rounding, not bit for bit).
 * Conv and Gemm add their bias to the float32-rounded product, as onnxruntime does, so a
 * layer whose bias moved to a separate Add (the QDQ export) computes the same bits.
 * Only what the tests' graphs use: Conv (pads, strides, dilations, group), BatchNormalization,
 * Relu, Clip, Add/Sub/Mul/Div/Max/Min (NumPy broadcasting), Round (half to even), Sqrt,
 * GlobalAveragePool, Flatten, Gemm, MatMul (2-D), Reshape, Shape, Identity, and
 * QuantizeLinear/DequantizeLinear (per tensor or per axis; int4/uint4, int8/uint8,
 * int16/uint16 codes). An op it does not know throws, so a test cannot pass by skipping one.
 */
import type { Graph, Node, TensorData } from '../../src/lib/onnx/ir.ts';
import { roundHalfToEven } from '../../src/lib/quant/round.ts';

export interface RefTensor {
  dims: number[];
  data: Float64Array;
  /** integer tensors: the range of their ONNX type (QuantizeLinear saturates to it) */
  intRange?: [number, number];
}

const INT_RANGES: Record<string, [number, number]> = {
  int8: [-128, 127],
  uint8: [0, 255],
  '5': [-32768, 32767],
  '4': [0, 65535],
  '22': [-8, 7],
  '21': [0, 15],
};

const f32 = Math.fround;
const size = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

function fromInit(t: TensorData): RefTensor {
  const dims = [...t.dims];
  if (t.dtype === 'other') {
    const type = String(t.onnxType);
    const bytes = t.data as Uint8Array;
    const n = size(dims);
    let data: Float64Array;
    if (type === '4' || type === '5') {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      data = Float64Array.from({ length: n }, (_, i) =>
        type === '5' ? view.getInt16(2 * i, true) : view.getUint16(2 * i, true),
      );
    } else if (type === '21' || type === '22') {
      // two 4-bit values per byte, the first in the low nibble
      data = Float64Array.from({ length: n }, (_, i) => {
        const v = (bytes[i >> 1] >> ((i & 1) * 4)) & 0xf;
        return type === '22' && v > 7 ? v - 16 : v;
      });
    } else throw new Error(`reference-eval cannot read ONNX type ${type} ("${t.name}")`);
    return { dims, data, intRange: INT_RANGES[type] };
  }
  const data = Float64Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
  return { dims, data, ...(INT_RANGES[t.dtype] ? { intRange: INT_RANGES[t.dtype] } : {}) };
}

/** Per-axis parameters of QuantizeLinear/DequantizeLinear: the channel of element i. */
function channelIndex(n: Node, x: RefTensor, s: RefTensor): (i: number) => number {
  if (s.data.length === 1) return () => 0;
  const rank = x.dims.length;
  const a = typeof n.attrs.axis === 'number' ? n.attrs.axis : 1;
  const axis = a < 0 ? a + rank : a;
  const inner = size(x.dims.slice(axis + 1));
  return (i) => Math.floor(i / inner) % x.dims[axis];
}

function ints(v: unknown, fallback: number[]): number[] {
  return Array.isArray(v) ? (v as number[]) : fallback;
}

function broadcast(a: RefTensor, b: RefTensor, f: (x: number, y: number) => number): RefTensor {
  const rank = Math.max(a.dims.length, b.dims.length);
  const pad = (d: number[]) => [...new Array<number>(rank - d.length).fill(1), ...d];
  const da = pad(a.dims);
  const db = pad(b.dims);
  const dims = da.map((x, i) => {
    if (x !== db[i] && x !== 1 && db[i] !== 1) throw new Error(`cannot broadcast [${a.dims}] with [${b.dims}]`);
    return Math.max(x, db[i]);
  });
  const stride = (d: number[]) => {
    const s = new Array<number>(rank).fill(0);
    let k = 1;
    for (let i = rank - 1; i >= 0; i--) {
      s[i] = d[i] === 1 ? 0 : k;
      k *= d[i];
    }
    return s;
  };
  const sa = stride(da);
  const sb = stride(db);
  const out = new Float64Array(size(dims));
  const idx = new Array<number>(rank).fill(0);
  for (let n = 0; n < out.length; n++) {
    let ia = 0;
    let ib = 0;
    for (let i = 0; i < rank; i++) {
      ia += idx[i] * sa[i];
      ib += idx[i] * sb[i];
    }
    out[n] = f32(f(a.data[ia], b.data[ib]));
    for (let i = rank - 1; i >= 0; i--) {
      if (++idx[i] < dims[i]) break;
      idx[i] = 0;
    }
  }
  return { dims, data: out };
}

const unary = (x: RefTensor, f: (v: number) => number): RefTensor => ({
  dims: [...x.dims],
  data: x.data.map((v) => f32(f(v))),
});

function conv(n: Node, x: RefTensor, w: RefTensor, b: RefTensor | undefined): RefTensor {
  const [N, C, H, W] = x.dims;
  const [M, Cg, kh, kw] = w.dims;
  const group = typeof n.attrs.group === 'number' ? n.attrs.group : 1;
  const [pt, pl, pb, pr] = ints(n.attrs.pads, [0, 0, 0, 0]);
  const [sh, sw] = ints(n.attrs.strides, [1, 1]);
  const [dh, dw] = ints(n.attrs.dilations, [1, 1]);
  if (Cg * group !== C) throw new Error(`Conv ${n.name}: ${C} input channels, weight expects ${Cg}×${group}`);
  const Ho = Math.floor((H + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  const Wo = Math.floor((W + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  const out = new Float64Array(N * M * Ho * Wo);
  const mPer = M / group;
  for (let bi = 0; bi < N; bi++)
    for (let m = 0; m < M; m++) {
      const g0 = Math.floor(m / mPer) * Cg;
      for (let oy = 0; oy < Ho; oy++)
        for (let ox = 0; ox < Wo; ox++) {
          let s = 0;
          for (let c = 0; c < Cg; c++)
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * sh - pt + ky * dh;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * sw - pl + kx * dw;
                if (ix < 0 || ix >= W) continue;
                s += x.data[((bi * C + g0 + c) * H + iy) * W + ix] * w.data[((m * Cg + c) * kh + ky) * kw + kx];
              }
            }
          out[((bi * M + m) * Ho + oy) * Wo + ox] = b ? f32(f32(s) + b.data[m]) : f32(s);
        }
    }
  return { dims: [N, M, Ho, Wo], data: out };
}

function gemm(n: Node, a: RefTensor, b: RefTensor, c: RefTensor | undefined): RefTensor {
  const tA = n.attrs.transA === 1;
  const tB = n.attrs.transB === 1;
  const alpha = typeof n.attrs.alpha === 'number' ? n.attrs.alpha : 1;
  const beta = typeof n.attrs.beta === 'number' ? n.attrs.beta : 1;
  const [M, K] = tA ? [a.dims[1], a.dims[0]] : a.dims;
  const Nn = tB ? b.dims[0] : b.dims[1];
  const A = (i: number, k: number) => (tA ? a.data[k * M + i] : a.data[i * K + k]);
  const B = (k: number, j: number) => (tB ? b.data[j * K + k] : b.data[k * Nn + j]);
  const bias = c ? broadcast({ dims: [M, Nn], data: new Float64Array(M * Nn) }, c, (_, y) => y) : undefined;
  const out = new Float64Array(M * Nn);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < Nn; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A(i, k) * B(k, j);
      out[i * Nn + j] = bias ? f32(f32(alpha * s) + f32(beta * bias.data[i * Nn + j])) : f32(alpha * s);
    }
  return { dims: [M, Nn], data: out };
}

function reshape(x: RefTensor, shape: RefTensor): RefTensor {
  const dims = Array.from(shape.data, (v, i) => (v === 0 ? x.dims[i] : v));
  const known = dims.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const resolved = dims.map((d) => (d === -1 ? x.data.length / known : d));
  if (size(resolved) !== x.data.length) throw new Error(`cannot reshape [${x.dims}] to [${resolved}]`);
  return { dims: resolved, data: x.data };
}

function run(n: Node, ins: (RefTensor | undefined)[]): RefTensor {
  const [x, y, z] = ins;
  const need = (t: RefTensor | undefined) => {
    if (!t) throw new Error(`${n.opType} ${n.name}: a required input is missing`);
    return t;
  };
  switch (n.opType) {
    case 'Identity':
      return need(x);
    case 'Relu':
      return unary(need(x), (v) => Math.max(0, v));
    case 'Round':
      return unary(need(x), roundHalfToEven);
    case 'Sqrt':
      return unary(need(x), Math.sqrt);
    case 'Clip': {
      const lo = y ? y.data[0] : typeof n.attrs.min === 'number' ? n.attrs.min : -Infinity;
      const hi = z ? z.data[0] : typeof n.attrs.max === 'number' ? n.attrs.max : Infinity;
      return unary(need(x), (v) => Math.min(hi, Math.max(lo, v)));
    }
    case 'Add':
      return broadcast(need(x), need(y), (a, b) => a + b);
    case 'Sub':
      return broadcast(need(x), need(y), (a, b) => a - b);
    case 'Mul':
      return broadcast(need(x), need(y), (a, b) => a * b);
    case 'Div':
      return broadcast(need(x), need(y), (a, b) => f32(a) / f32(b));
    case 'Max':
      return broadcast(need(x), need(y), Math.max);
    case 'Min':
      return broadcast(need(x), need(y), Math.min);
    case 'Conv':
      return conv(n, need(x), need(y), z);
    case 'BatchNormalization': {
      const [, gamma, beta, mean, variance] = ins.map(need);
      const eps = f32(typeof n.attrs.epsilon === 'number' ? n.attrs.epsilon : 1e-5);
      const t = need(x);
      const C = t.dims[1];
      const per = t.data.length / (t.dims[0] * C);
      const out = new Float64Array(t.data.length);
      for (let i = 0; i < out.length; i++) {
        const c = Math.floor(i / per) % C;
        out[i] = f32(((t.data[i] - mean.data[c]) / Math.sqrt(variance.data[c] + eps)) * gamma.data[c] + beta.data[c]);
      }
      return { dims: [...t.dims], data: out };
    }
    case 'GlobalAveragePool': {
      const t = need(x);
      const [N, C] = t.dims;
      const per = t.data.length / (N * C);
      const out = new Float64Array(N * C);
      for (let i = 0; i < N * C; i++) {
        let s = 0;
        for (let k = 0; k < per; k++) s += t.data[i * per + k];
        out[i] = f32(s / per);
      }
      return { dims: [N, C, ...t.dims.slice(2).map(() => 1)], data: out };
    }
    case 'Flatten': {
      const t = need(x);
      const axis = typeof n.attrs.axis === 'number' ? n.attrs.axis : 1;
      return { dims: [size(t.dims.slice(0, axis)), size(t.dims.slice(axis))], data: t.data };
    }
    case 'Gemm':
      return gemm(n, need(x), need(y), z);
    case 'MatMul':
      return gemm(n, need(x), need(y), undefined);
    case 'Reshape':
      return reshape(need(x), need(y));
    case 'QuantizeLinear': {
      const t = need(x);
      const s = need(y);
      const zp = need(z);
      const [lo, hi] = zp.intRange ?? [0, 255];
      const ch = channelIndex(n, t, s);
      const data = t.data.map((v, i) => {
        const c = ch(i);
        return Math.min(hi, Math.max(lo, roundHalfToEven(f32(v / s.data[c])) + zp.data[c]));
      });
      return { dims: [...t.dims], data, intRange: [lo, hi] };
    }
    case 'DequantizeLinear': {
      const t = need(x);
      const s = need(y);
      const zp = z ?? { dims: [], data: new Float64Array(s.data.length) };
      const ch = channelIndex(n, t, s);
      return { dims: [...t.dims], data: t.data.map((v, i) => f32((v - zp.data[ch(i)]) * s.data[ch(i)])) };
    }
    case 'Shape':
      return { dims: [need(x).dims.length], data: Float64Array.from(need(x).dims) };
    default:
      throw new Error(`reference-eval does not implement ${n.opType} (node ${n.name})`);
  }
}

/**
 * Runs `g` on `feeds` (by input name) and returns the graph outputs, or the tensors named
 * in `fetch`. Nodes run in the graph's order (topologically sorted by makeGraph/parseModel).
 */
export function evalGraph(g: Graph, feeds: Record<string, RefTensor>, fetch?: string[]): Record<string, RefTensor> {
  const values = new Map<string, RefTensor>();
  for (const [name, t] of g.initializers) values.set(name, fromInit(t));
  for (const [name, t] of Object.entries(feeds)) values.set(name, t);
  for (const n of g.nodes) {
    const out = run(
      n,
      n.inputs.map((i) => (i ? values.get(i) : undefined)),
    );
    values.set(n.outputs[0], out);
  }
  const names = fetch ?? g.outputs.map((o) => o.name);
  return Object.fromEntries(
    names.map((k) => {
      const v = values.get(k);
      if (!v) throw new Error(`reference-eval: nothing computed "${k}"`);
      return [k, v];
    }),
  );
}
