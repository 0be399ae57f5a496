/**
 * One config's export as named files (model.qdq.onnx, model.int8.onnx, ranges.json, the
 * backend's range file, README.txt) and as one zip, for the CLI (`--export DIR`) and the
 * app's download. model.int8.onnx (8-bit runs only) is the layout onnxruntime runs on
 * integer kernels (integer-qdq.ts).
 * A run the QDQ format cannot express still gets its range files; the reason is kept as
 * `qdqError` and written into the README and ranges.json notes.
 * Pure: bytes out, no file system.
 */
import { strToU8, zipSync } from 'fflate';
import { QpError, toErrorInfo, type ErrorInfo } from '../util/errors.ts';
import type { ExperimentConfig } from '../config/types.ts';
import type { QuantizedRun } from '../experiment/types.ts';
import { serializeModel } from '../onnx/model.ts';
import { rangeBits, toDeployable } from './deployable.ts';
import { buildQdq, CLIP_INT4_NOTE } from './qdq.ts';
import { buildIntegerQdq } from './integer-qdq.ts';
import { pplCudaRanges, rangesJson, snpeJson, tengineScale, tensorrtJson, vitisJson } from './ranges.ts';

export interface ExportBundle {
  /** readable folder name: backend, bits, fixes and the config hash */
  folder: string;
  files: Record<string, Uint8Array>;
  /** why model.qdq.onnx is missing, when it is */
  qdqError?: ErrorInfo;
  notes: string[];
  /** the graph optimization level onnxruntime needs to load model.qdq.onnx, when its default fails (CLIP_INT4_NOTE) */
  qdqOptimization?: 'basic';
}

/** Folder name of a config's export, e.g. `tensorrt-w8a8-bc-1a2b3c4d`. */
export function exportFolderName(cfg: ExperimentConfig, configHash: string): string {
  const fixes = [cfg.biasCorrection ? 'bc' : '', cfg.bnReestimate ? 'bn' : ''].filter(Boolean);
  const slug = [cfg.backend, `w${cfg.wBits}a${cfg.aBits}`, ...fixes].join('-').replace(/[^a-zA-Z0-9._-]/g, '_');
  return `${slug}-${configHash.slice(0, 8)}`;
}

const json = (v: unknown) => strToU8(`${JSON.stringify(v, null, 2)}\n`);

/**
 * Export one simulated run (see module header). Throws QpError EXPORT_UNSUPPORTED /
 * INTERNAL only when not even the range files can be made (weights off any grid).
 */
/**
 * Measured by bench:webgpu (docs/performance.md): onnxruntime-web 1.30 on WebGPU gave other
 * top-1 decisions than wasm for MobileNet-V2's int8-activation export run with its QDQ graph
 * optimizations off (every image, logits off by up to 42), and the same with its defaults;
 * uint8 activations agreed both ways (upstream: onnxruntime issue 32578).
 */
export const INT8_WEBGPU_NOTE =
  'model.qdq.onnx has int8 activations. onnxruntime-web 1.30 on WebGPU computed such a model wrongly when its QDQ graph optimizations were turned off (disable_quant_qdq); with its default session options, and on wasm, it gave the simulated results. On WebGPU, run it with the default options.';

export function exportRun(run: QuantizedRun, configHash: string): ExportBundle {
  const d = toDeployable(run);
  const notes: string[] = [];
  const files: Record<string, Uint8Array> = {};
  let qdqError: ErrorInfo | undefined;
  let qdqOptimization: ExportBundle['qdqOptimization'];
  try {
    const { graph, clipped, clipBeforeInt4 } = buildQdq(d);
    files['model.qdq.onnx'] = serializeModel(graph);
    if (clipBeforeInt4.length) {
      notes.push(CLIP_INT4_NOTE);
      qdqOptimization = 'basic';
    }
    if (clipped)
      notes.push(
        `${clipped} activation(s) use a narrow integer range: a Clip before their QuantizeLinear keeps the codes in [qmin, qmax], as simulated.`,
      );
    if (d.activations.some((a) => rangeBits(a.qparams).bits === 8 && rangeBits(a.qparams).signed))
      notes.push(INT8_WEBGPU_NOTE);
  } catch (e) {
    if (!(e instanceof QpError) || e.code !== 'EXPORT_UNSUPPORTED') throw e;
    qdqError = toErrorInfo(e);
    notes.push(`model.qdq.onnx was not written: ${e.message}`);
  }
  try {
    const { graph, plan } = buildIntegerQdq(d);
    files['model.int8.onnx'] = serializeModel(graph);
    const integer = plan.layers.filter((l) => l.kernel !== 'float').length;
    const float = plan.layers.filter((l) => l.kernel === 'float').map((l) => l.node);
    notes.push(
      `model.int8.onnx: onnxruntime runs ${integer} op(s) as integer kernels${float.length ? `; ${float.length} quantized op(s) stay in float (${float.slice(0, 3).join(', ')}${float.length > 3 ? ', …' : ''})` : ''}.`,
    );
  } catch (e) {
    if (!(e instanceof QpError) || e.code !== 'EXPORT_UNSUPPORTED') throw e;
    notes.push(`model.int8.onnx was not written: ${e.message}`);
  }
  const inexact = d.weights.filter((w) => w.maxAbsError > 0);
  if (inexact.length) {
    const worst = Math.max(...inexact.map((w) => w.maxAbsError));
    notes.push(
      `${inexact.length} layer(s) had their per-channel scales changed by BN re-estimation; their dequantized weights match the simulation to ${worst.toExponential(1)} (float32 rounding of the rescaled scale).`,
    );
  }
  const learned = d.activations.filter((a) => a.calibratedScale !== undefined).length;
  if (learned)
    notes.push(
      `${learned} activation scale(s) are the step sizes the reconstruction (${d.config.ptq}) learned, as simulated; ranges.json keeps calibration's beside them (calibrated.scale).`,
    );
  if (d.config.backend === 'tensorrt') {
    const t = tensorrtJson(d);
    if (t.json) files['tensorrt.json'] = json(t.json);
    else notes.push(t.reason!);
  }
  if (d.config.backend === 'snpe') files['snpe_encodings.json'] = json(snpeJson(d));
  if (d.config.backend === 'ppl-cuda') files['ppl_cuda_clip_ranges.txt'] = strToU8(pplCudaRanges(d));
  if (d.config.backend === 'tengine') files['tengine.scale'] = strToU8(tengineScale(d));
  if (d.config.backend === 'vitis') files['vitis_clip_ranges.json'] = json(vitisJson(d));
  files['ranges.json'] = json(rangesJson(d, { configHash, notes }));
  const readme = [
    `Export of a simulated ${d.config.backend} W${d.config.wBits}A${d.config.aBits} run (config ${configHash}).`,
    '',
    files['model.qdq.onnx']
      ? 'model.qdq.onnx: the model with integer weights + DequantizeLinear and QuantizeLinear/DequantizeLinear at every simulated activation point.'
      : 'model.qdq.onnx: not written (see below).',
    ...(files['model.int8.onnx']
      ? [
          'model.int8.onnx: the same quantizers in the layout onnxruntime fuses into integer kernels (QLinearConv, QLinearAdd, ...): int32 biases at scale s_x·s_w, uint8 activations saturating at the type. What a deployment on onnxruntime computes; it can differ from the simulation (see the notes).',
        ]
      : []),
    'ranges.json: scale, zero point, bits, signedness and axis of every quantized tensor.',
    ...(files['tensorrt.json'] ? ['tensorrt.json: TensorRT dynamic ranges (amax per activation tensor).'] : []),
    ...(files['snpe_encodings.json']
      ? ['snpe_encodings.json: SNPE/AIMET quantization overrides (--quantization_overrides).']
      : []),
    ...(files['ppl_cuda_clip_ranges.txt']
      ? ['ppl_cuda_clip_ranges.txt: PPL-CUDA clip ranges (tensor: amax per line), as MQBench deploys them.']
      : []),
    ...(files['tengine.scale']
      ? [
          'tengine.scale: Tengine quantization table (tensor scale zero_point per line), with fused Conv+ReLU outputs repeated under the Conv name.',
        ]
      : []),
    ...(files['vitis_clip_ranges.json']
      ? ["vitis_clip_ranges.json: Vitis activation scales; building the DPU xmodel needs AMD's Vitis AI compiler."]
      : []),
    ...(notes.length ? ['', 'Notes:', ...notes.map((n) => `- ${n}`)] : []),
    '',
  ].join('\n');
  files['README.txt'] = strToU8(readme);
  return {
    folder: exportFolderName(d.config, configHash),
    files,
    qdqError,
    notes,
    ...(qdqOptimization ? { qdqOptimization } : {}),
  };
}

/** The bundle as one zip with its files under the bundle's folder name. */
export function zipBundle(b: ExportBundle): Uint8Array {
  const tree: Record<string, Uint8Array> = {};
  for (const [name, bytes] of Object.entries(b.files)) tree[`${b.folder}/${name}`] = bytes;
  return zipSync(tree, { level: 6 });
}
