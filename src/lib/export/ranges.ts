/**
 * Range files: the generic `ranges.json` (every quantized tensor's scale, zero point, bits,
 * signedness and axis) and the backend files MQBench's deploy step writes, built from the
 * same numbers as the QDQ model:
 * - TensorRT dynamic ranges `{"tensorrt": {"blob_range": {tensor: amax}}}`, amax the
 *   largest |value| the activation quantizer represents (MQBench deploy_linear: max(−min, max));
 * - SNPE/AIMET quantization overrides (`activation_encodings` / `param_encodings`, each
 *   tensor a list of {bitwidth, min, max, scale, offset, is_symmetric, dtype}), offset in
 *   SNPE's unsigned convention q_u = round(x / scale) − offset, so min = offset·scale;
 * - PPL-CUDA clip ranges: one `tensor: amax` line per activation (MQBench deploy_linear,
 *   backend 'ppl-cuda': amax = max(−(qmin − zp)·s, (qmax − zp)·s));
 * - Tengine `.scale` file: one `tensor scale zero_point` line per activation (MQBench
 *   deploy_tengine), repeated under the producing Conv's output when the activation is a
 *   Relu or Clip(0, 6) right after a Conv, because Tengine's converter fuses those pairs
 *   and the fused node is known by the Conv's output name;
 * - Vitis `{"vitis": {tensor: {"scale": s}}}` (MQBench deploy_linear, backend 'vitis';
 *   the xmodel itself needs AMD's compiler).
 * Pure: JSON-ready objects and text out.
 */
import { producerOf, scalarOperand, type Graph, type Node } from '../onnx/ir.ts';
import type { QParams } from '../quant/types.ts';
import { type Deployable, rangeBits } from './deployable.ts';

const list = (a: ArrayLike<number>): number[] => Array.from(a, Number);

/** Representable real range per channel: [(qmin − zp)·s, (qmax − zp)·s]. */
function realRange(qp: QParams, c: number): [number, number] {
  return [
    Math.fround((qp.qmin - qp.zeroPoint[c]) * qp.scale[c]),
    Math.fround((qp.qmax - qp.zeroPoint[c]) * qp.scale[c]),
  ];
}

function describe(qp: QParams) {
  const { bits, signed, narrow } = rangeBits(qp);
  const per = qp.axis >= 0;
  const symmetric = Array.from(qp.zeroPoint).every((z) => z === 0);
  return {
    bits,
    signed,
    narrow_range: narrow,
    symmetric,
    qmin: qp.qmin,
    qmax: qp.qmax,
    axis: per ? qp.axis : null,
    scale: per ? list(qp.scale) : qp.scale[0],
    zero_point: per ? list(qp.zeroPoint) : qp.zeroPoint[0],
  };
}

export const RANGES_FORMULA =
  'q = clamp(round_half_to_even(x / scale) + zero_point, qmin, qmax); x_hat = (q - zero_point) * scale';

/** ranges.json: every quantizer of the run, activations by tensor and weights by initializer. */
export function rangesJson(d: Deployable, extra: { configHash: string; notes: string[] }) {
  const activations: Record<string, unknown> = {};
  for (const a of d.activations) {
    const [min, max] = realRange(a.qparams, 0);
    // a learned step size (BRECQ, QDrop, AdaRound with learned ranges) is the scale above;
    // calibration's stays beside its range, so both can be compared
    const learned = a.calibratedScale !== undefined;
    activations[a.tensor] = {
      ...describe(a.qparams),
      min,
      max,
      ...(learned ? { scale_learned: true } : {}),
      calibrated: { min: a.min, max: a.max, ...(learned ? { scale: a.calibratedScale } : {}) },
    };
  }
  const weights: Record<string, unknown> = {};
  for (const w of d.weights) {
    weights[w.initializer] = {
      node: w.node,
      shape: w.dims,
      ...describe(w.qparams),
      ...(w.maxAbsError > 0 ? { max_abs_error: w.maxAbsError } : {}),
    };
  }
  return {
    format: 'quantization-playground ranges',
    version: 1,
    formula: RANGES_FORMULA,
    backend: d.config.backend,
    configHash: extra.configHash,
    config: d.config,
    notes: extra.notes,
    activations,
    weights,
  };
}

/**
 * TensorRT dynamic ranges, or the reason there are none: TensorRT quantizes activations
 * symmetrically to int8, so every activation needs zero point 0 and 8 bits.
 */
export function tensorrtJson(d: Deployable): {
  json?: { tensorrt: { blob_range: Record<string, number> } };
  reason?: string;
} {
  const bad = d.activations.filter((a) => a.qparams.zeroPoint[0] !== 0 || rangeBits(a.qparams).bits !== 8);
  if (bad.length) {
    return {
      reason: `tensorrt.json was not written: TensorRT takes symmetric 8-bit activation ranges, and ${bad.length} activation(s) (e.g. "${bad[0].tensor}") are asymmetric or not 8-bit.`,
    };
  }
  const blob_range: Record<string, number> = {};
  for (const a of d.activations) blob_range[a.tensor] = amax(a.qparams);
  return { json: { tensorrt: { blob_range } } };
}

function snpeEncoding(qp: QParams, c: number) {
  const [min, max] = realRange(qp, c);
  const { bits } = rangeBits(qp);
  const symmetric = qp.zeroPoint[c] === 0 && qp.qmin < 0;
  return {
    bitwidth: bits,
    min,
    max,
    scale: qp.scale[c],
    offset: qp.qmin - qp.zeroPoint[c],
    is_symmetric: symmetric ? 'True' : 'False',
    dtype: 'int',
  };
}

/** SNPE/AIMET encodings: one entry per activation, one per output channel for per-channel weights. */
export function snpeJson(d: Deployable) {
  const activation_encodings: Record<string, unknown[]> = {};
  for (const a of d.activations) activation_encodings[a.tensor] = [snpeEncoding(a.qparams, 0)];
  const param_encodings: Record<string, unknown[]> = {};
  for (const w of d.weights)
    param_encodings[w.initializer] = Array.from(w.qparams.scale, (_, c) => snpeEncoding(w.qparams, c));
  return { activation_encodings, param_encodings };
}

/** Largest |value| an activation quantizer represents (TensorRT's and PPL-CUDA's amax). */
function amax(qp: QParams): number {
  const [min, max] = realRange(qp, 0);
  return Math.max(-min, max);
}

/** PPL-CUDA clip ranges as MQBench writes them: `tensor: amax` per line. */
export function pplCudaRanges(d: Deployable): string {
  return d.activations.map((a) => `${a.tensor}: ${amax(a.qparams)}\n`).join('');
}

/**
 * The Conv output Tengine knows an activation by after fusing Conv+Relu / Conv+ReLU6
 * (Clip(0, 6)), or undefined when the activation is not such a pair's output.
 */
function tengineFusedName(g: Graph, producers: Map<string, Node>, tensor: string): string | undefined {
  const act = producers.get(tensor);
  const relu =
    act?.opType === 'Relu' ||
    (act?.opType === 'Clip' && scalarOperand(g, act, 1, 'min') === 0 && scalarOperand(g, act, 2, 'max') === 6);
  const conv = relu ? producers.get(act!.inputs[0]) : undefined;
  return conv?.opType === 'Conv' ? conv.outputs[0] : undefined;
}

/** Tengine `.scale` file: `tensor scale zero_point` per line, fused Conv outputs included. */
export function tengineScale(d: Deployable): string {
  const producers = producerOf(d.graph);
  const lines: string[] = [];
  for (const a of d.activations) {
    const line = ` ${a.qparams.scale[0]} ${a.qparams.zeroPoint[0]}\n`;
    lines.push(`${a.tensor}${line}`);
    const fused = tengineFusedName(d.graph, producers, a.tensor);
    if (fused) lines.push(`${fused}${line}`);
  }
  return lines.join('');
}

/** Vitis activation scales as MQBench writes them (the DPU takes power-of-two scales). */
export function vitisJson(d: Deployable): { vitis: Record<string, { scale: number }> } {
  const vitis: Record<string, { scale: number }> = {};
  for (const a of d.activations) vitis[a.tensor] = { scale: a.qparams.scale[0] };
  return { vitis };
}
