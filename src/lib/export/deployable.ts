/**
 * From a simulated run (the hook payload of the pipeline) to what a deployment needs:
 * a float graph carrying the final weights and biases, every quantized weight as integer
 * codes with the scale/zero point/axis that reproduce it, and every activation point's
 * quantizer. Whatever changed the weights after quantization (bias correction, BN
 * re-estimation, later stages) is read from the evaluated graph, so it is what is exported.
 *
 * Pure: graph IR and typed arrays in, the same out; no I/O.
 */
import type { ExperimentConfig } from '../config/types.ts';
import { QpError } from '../util/errors.ts';
import type { QuantizedRun } from '../experiment/types.ts';
import { type Graph, cloneGraph } from '../onnx/ir.ts';
import { dequantize, quantizeToInt } from '../quant/quantizer.ts';
import type { QParams } from '../quant/types.ts';

/** Bits and signedness of an integer range [qmin, qmax] (narrow signed ranges included). */
export function rangeBits(qp: Pick<QParams, 'qmin' | 'qmax'>): { bits: number; signed: boolean; narrow: boolean } {
  const signed = qp.qmin < 0;
  const bits = Math.round(Math.log2(qp.qmax + 1)) + (signed ? 1 : 0);
  return { bits, signed, narrow: signed && qp.qmin === -qp.qmax };
}

export interface DeployWeight {
  /** initializer name in Deployable.graph (the name the layer reads) */
  initializer: string;
  node: string;
  dims: number[];
  /** integer codes, zero point included (QuantizeLinear convention) */
  codes: Int32Array;
  qparams: QParams;
  /** largest |dequantized − simulated| weight (0: bit-exact) */
  maxAbsError: number;
}

export interface DeployActivation {
  tensor: string;
  /** the quantizer as simulated: a step size learned by the reconstruction included */
  qparams: QParams;
  /** calibrated clipping range before scale/zero-point rounding */
  min: number;
  max: number;
  /** calibration's step size, where the reconstruction learned the one in qparams */
  calibratedScale?: number;
}

export interface Deployable {
  config: ExperimentConfig;
  /** the FP32 graph with the final (fake-quantized) weights and final biases */
  graph: Graph;
  weights: DeployWeight[];
  activations: DeployActivation[];
}

/** Relative tolerance for final weights that are not on their grid (only per-channel rescaling). */
const GRID_TOLERANCE = 1e-5;

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/**
 * Integer codes and parameters reproducing `values`, the final weights of a layer whose
 * simulated quantization was `qp` (giving `original`). On qp's grid (no fix, bias
 * correction, AdaRound/GPTQ rounding, per-tensor BN re-estimation) the codes are exact.
 * BN re-estimation scales a per-channel layer's output channel c by a_c, which keeps its
 * codes and changes its scale to a_c·s_c: that scale is recovered from the largest code
 * (the product is then within a float32 rounding of the simulated value).
 * Throws QpError EXPORT_UNSUPPORTED when the values lie on no such grid.
 */
export function weightsOnGrid(
  name: string,
  values: Float32Array,
  dims: number[],
  qp: QParams,
  original: Float32Array,
): { codes: Int32Array; qparams: QParams; maxAbsError: number } {
  const err = (codes: Int32Array, q: QParams) => {
    const d = dequantize(codes, dims, q);
    let m = 0;
    for (let i = 0; i < d.length; i++) m = Math.max(m, Math.abs(d[i] - values[i]));
    return m;
  };
  let codes = quantizeToInt(values, dims, qp);
  let qparams = qp;
  let e = err(codes, qp);
  if (e > 0 && qp.axis >= 0) {
    const base = quantizeToInt(original, dims, qp);
    const C = qp.scale.length;
    const inner = dims.slice(qp.axis + 1).reduce((a, b) => a * b, 1);
    const best = new Int32Array(C).fill(-1);
    for (let i = 0; i < base.length; i++) {
      const c = Math.floor(i / inner) % C;
      const k = best[c];
      if (k < 0 || Math.abs(base[i] - qp.zeroPoint[c]) > Math.abs(base[k] - qp.zeroPoint[c])) best[c] = i;
    }
    const scale = new Float32Array(qp.scale);
    for (let c = 0; c < C; c++) {
      const k = best[c];
      const q = k < 0 ? 0 : base[k] - qp.zeroPoint[c];
      if (q !== 0 && original[k] !== 0) scale[c] = Math.fround(qp.scale[c] * (values[k] / original[k]));
    }
    const rescaled = { ...qp, scale };
    const e2 = err(base, rescaled);
    if (e2 < e) [codes, qparams, e] = [base, rescaled, e2];
  }
  if (e > GRID_TOLERANCE * Math.max(maxAbs(values), Number.MIN_VALUE)) {
    throw new QpError(
      'EXPORT_UNSUPPORTED',
      `The final weights of "${name}" are not on an integer grid (largest deviation ${e.toExponential(2)}), so they cannot be stored as integers. A stage changed them after quantization without re-quantizing; export the run without that stage.`,
    );
  }
  return { codes, qparams, maxAbsError: e };
}

/**
 * The deployable view of a simulated run (see module header). Throws QpError
 * EXPORT_UNSUPPORTED for weights off any grid, INTERNAL when the evaluated graph lacks
 * a quantized layer.
 */
export function toDeployable(run: Omit<QuantizedRun, 'evaluation'>): Deployable {
  const graph = cloneGraph(run.graph, { shareInitializers: true });
  const byName = new Map(graph.nodes.map((n) => [n.name, n] as const));
  const evaluatedByOutput = new Map(run.evaluated.nodes.map((n) => [n.outputs[0], n] as const));
  const weights: DeployWeight[] = [];
  for (const w of run.weights) {
    const node = byName.get(w.point.node);
    const fin = node && evaluatedByOutput.get(node.outputs[0]);
    if (!node || !fin)
      throw new QpError(
        'INTERNAL',
        `Layer "${w.point.node}" is missing from the evaluated model, so its weights cannot be exported.`,
      );
    const init = graph.initializers.get(w.point.initializer)!;
    const slot = node.inputs.indexOf(w.point.initializer); // 1 for Conv/Gemm; either side of a MatMul
    const finalW = run.evaluated.initializers.get(fin.inputs[slot]);
    if (!finalW || finalW.dtype !== 'float32' || finalW.data.length !== init.data.length) {
      throw new QpError(
        'INTERNAL',
        `The evaluated weights of layer "${w.point.node}" are missing or have a different size.`,
      );
    }
    const values = finalW.data as Float32Array;
    const g = weightsOnGrid(w.point.initializer, values, init.dims, w.qparams, w.values);
    graph.initializers.set(w.point.initializer, {
      name: w.point.initializer,
      dtype: 'float32',
      dims: [...init.dims],
      data: values,
    });
    weights.push({ initializer: w.point.initializer, node: node.name, dims: [...init.dims], ...g });
    // bias: the evaluated layer's (fixes give it a new, freshly named initializer)
    const b = fin.inputs[2];
    if (b && b !== node.inputs[2]) {
      const t = run.evaluated.initializers.get(b);
      if (!t) throw new QpError('INTERNAL', `The corrected bias of layer "${node.name}" is not an initializer.`);
      graph.initializers.set(b, t);
      while (node.inputs.length < 3) node.inputs.push('');
      node.inputs[2] = b;
      if (node.opType === 'Gemm' && fin.attrs.beta !== undefined) {
        node.attrs = { ...node.attrs, beta: fin.attrs.beta };
        if (node.attrTypes) node.attrTypes = { ...node.attrTypes, beta: 'float' };
      }
    }
  }
  const activations = run.activations.map((a): DeployActivation => ({
    tensor: a.point.tensor,
    qparams: a.qparams,
    min: a.calibrated?.min ?? a.min,
    max: a.calibrated?.max ?? a.max,
    ...(a.calibrated ? { calibratedScale: a.calibrated.scale } : {}),
  }));
  return { config: run.config, graph, weights, activations };
}
