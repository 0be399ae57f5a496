/**
 * Backend presets: the quantization scheme and activation placement of each deployment
 * target.
 *
 * Why it exists: "quantize for TensorRT" must mean one fixed, documented scheme. Values
 * follow MQBench `mqbench/prepare_by_platform.py` (ParamsTable: QuantizeScheme symmetry /
 * per_channel / pot_scale / bit, default observers) and the placement of its
 * `mqbench/custom_quantizer/*` model quantizers (which op inputs get an activation
 * fake-quantizer). FBGEMM is not an MQBench backend: it follows PyTorch's
 * `get_default_qconfig('fbgemm')`. Where MQBench leaves a choice, the preset says why.
 *
 * MQBench maps symmetric schemes to qint8 [-128, 127] and asymmetric ones to quint8
 * [0, 255]; so asymmetric presets here are unsigned (the sign of an asymmetric range only
 * shifts the zero point, the grid is the same).
 *
 * Pure data: imports only the config types.
 */
import type { BackendName } from './names.ts';
import type { BackendPreset, PlacementRules } from './types.ts';

/** MQBench ModelQuantizer.module/function_type_to_quant_input: conv, linear, add, mul, pooling. */
const MODEL_QUANTIZER: PlacementRules = {
  conv: true,
  gemm: true,
  add: true,
  pool: true,
  concat: false,
  modelInput: false,
};

export const BACKEND_PRESETS: Readonly<Record<BackendName, BackendPreset>> = Object.freeze({
  academic: {
    name: 'academic',
    label: 'Academic',
    description:
      'Research setting: per-channel symmetric weights, per-tensor asymmetric activations, only Conv/Linear inputs quantized, first and last layer kept at 8 bits.',
    // MQBench Academic takes w/a_qscheme from the user; these are our defaults. Observers
    // follow MQBench's PTQ example configs (w MSEObserver, a EMAMSEObserver).
    wBits: 8,
    wGranularity: 'per-channel',
    wSymmetric: true,
    wNarrowRange: false,
    wPowerOfTwo: false,
    wObserver: 'mse',
    aBits: 8,
    aSymmetric: false,
    aNarrowRange: false,
    aPowerOfTwo: false,
    aSign: 'unsigned',
    aObserver: 'ema-mse',
    // AcademicQuantizer: module_type_to_quant_input = (Conv2d, Linear) only.
    placement: { conv: true, gemm: true, add: false, pool: false, concat: false, modelInput: false },
    firstLast8bit: true,
  },
  tensorrt: {
    name: 'tensorrt',
    label: 'TensorRT',
    description:
      'NVIDIA GPUs: int8 per-channel symmetric weights and per-tensor symmetric activations, both in [-127, 127].',
    // ParamsTable Tensorrt: w symmetric per-channel 8b, a symmetric per-tensor 8b,
    // MinMaxObserver / EMAMinMaxObserver. Narrow range [-127, 127] as TensorRT itself
    // (MQBench simulates [-128, 127]).
    wBits: 8,
    wGranularity: 'per-channel',
    wSymmetric: true,
    wNarrowRange: true,
    wPowerOfTwo: false,
    wObserver: 'minmax',
    aBits: 8,
    aSymmetric: true,
    aNarrowRange: true,
    aPowerOfTwo: false,
    aSign: 'signed',
    aObserver: 'ema-minmax',
    // TRTModelQuantizer (a ModelQuantizer): Conv/Linear/pool inputs and Add inputs (one Add
    // input that is a single-use Conv is fused in TensorRT; we quantize both).
    placement: { ...MODEL_QUANTIZER },
    firstLast8bit: false,
  },
  snpe: {
    name: 'snpe',
    label: 'SNPE',
    description: 'Qualcomm Snapdragon (SNPE/QNN DSP): uint8 asymmetric per-tensor weights and activations.',
    // ParamsTable SNPE: asymmetric per-tensor 8b both, MinMaxObserver / EMAMinMaxObserver.
    wBits: 8,
    wGranularity: 'per-tensor',
    wSymmetric: false,
    wNarrowRange: false,
    wPowerOfTwo: false,
    wObserver: 'minmax',
    aBits: 8,
    aSymmetric: false,
    aNarrowRange: false,
    aPowerOfTwo: false,
    aSign: 'unsigned',
    aObserver: 'ema-minmax',
    placement: { ...MODEL_QUANTIZER },
    firstLast8bit: false,
  },
  fbgemm: {
    name: 'fbgemm',
    label: 'FBGEMM (x86)',
    description:
      "PyTorch's x86 server backend: int8 per-channel symmetric weights, uint8 asymmetric activations with a histogram (L2) observer.",
    // PyTorch get_default_qconfig('fbgemm'): weight PerChannelMinMaxObserver qint8
    // per_channel_symmetric; activation HistogramObserver quint8 affine, which searches the
    // range minimizing L2 error: our 'mse'. PyTorch also sets reduce_range=True ([0, 127])
    // against AVX2 overflow; we keep the full uint8 range (set aBits 7 to simulate it).
    wBits: 8,
    wGranularity: 'per-channel',
    wSymmetric: true,
    wNarrowRange: false,
    wPowerOfTwo: false,
    wObserver: 'minmax',
    aBits: 8,
    aSymmetric: false,
    aNarrowRange: false,
    aPowerOfTwo: false,
    aSign: 'unsigned',
    aObserver: 'mse',
    // PyTorch FX quantization: conv, linear, add, pooling, cat all run quantized.
    placement: { ...MODEL_QUANTIZER, concat: true },
    firstLast8bit: false,
  },
  'ppl-cuda': {
    name: 'ppl-cuda',
    label: 'PPL-CUDA',
    description: 'SenseTime PPL on NVIDIA GPUs: per-channel asymmetric weights, per-tensor asymmetric activations.',
    // ParamsTable PPLCUDA: w asymmetric per-channel 8b, a asymmetric per-tensor 8b,
    // MinMaxObserver / MinMaxObserver.
    wBits: 8,
    wGranularity: 'per-channel',
    wSymmetric: false,
    wNarrowRange: false,
    wPowerOfTwo: false,
    wObserver: 'minmax',
    aBits: 8,
    aSymmetric: false,
    aNarrowRange: false,
    aPowerOfTwo: false,
    aSign: 'unsigned',
    aObserver: 'minmax',
    placement: { ...MODEL_QUANTIZER },
    firstLast8bit: false,
  },
  openvino: {
    name: 'openvino',
    label: 'OpenVINO',
    description:
      'Intel CPUs/GPUs: per-channel symmetric weights, per-tensor symmetric activations, unsigned [0, 255] where the input is non-negative (after ReLU).',
    // ParamsTable OPENVINO: w symmetric per-channel 8b, a symmetric per-tensor 8b,
    // MinMaxObserver / EMAMinMaxObserver. OPENVINOQuantizer switches activations after
    // ReLU to quant range [0, 255] ('auto'), quantizes the model input (placeholder) and
    // pooling/add inputs. (It also limits weights to 7 bits against AVX2 overflow; set
    // wBits 7 to simulate that.)
    wBits: 8,
    wGranularity: 'per-channel',
    wSymmetric: true,
    wNarrowRange: false,
    wPowerOfTwo: false,
    wObserver: 'minmax',
    aBits: 8,
    aSymmetric: true,
    aNarrowRange: false,
    aPowerOfTwo: false,
    aSign: 'auto',
    aObserver: 'ema-minmax',
    placement: { ...MODEL_QUANTIZER, modelInput: true },
    firstLast8bit: false,
  },
  vitis: {
    name: 'vitis',
    label: 'Vitis AI',
    description: 'Xilinx/AMD DPU: per-tensor symmetric int8 weights and activations with power-of-two scales.',
    // ParamsTable Vitis: symmetric per-tensor pot_scale 8b both. Its MinMaxFloorObserver /
    // ModeMinMaxFloorObserver pick the power-of-two scale with the lowest L2 error, which
    // our 'mse' observer with a power-of-two spec reproduces.
    wBits: 8,
    wGranularity: 'per-tensor',
    wSymmetric: true,
    wNarrowRange: false,
    wPowerOfTwo: true,
    wObserver: 'mse',
    aBits: 8,
    aSymmetric: true,
    aNarrowRange: false,
    aPowerOfTwo: true,
    aSign: 'signed',
    aObserver: 'mse',
    // VitisQuantizer quantizes the input and the outputs of nearly every op, cat included.
    placement: { conv: true, gemm: true, add: true, pool: true, concat: true, modelInput: true },
    firstLast8bit: false,
  },
  'onnx-qnn': {
    name: 'onnx-qnn',
    label: 'ONNX QNN (TVM)',
    description: 'ONNX QLinear operators as run by TVM: uint8 asymmetric per-tensor weights and activations.',
    // ParamsTable ONNX_QNN: asymmetric per-tensor 8b both, MinMaxObserver / MinMaxObserver.
    // ONNXQNNQuantizer: Conv/Linear, Add and AvgPool inputs.
    wBits: 8,
    wGranularity: 'per-tensor',
    wSymmetric: false,
    wNarrowRange: false,
    wPowerOfTwo: false,
    wObserver: 'minmax',
    aBits: 8,
    aSymmetric: false,
    aNarrowRange: false,
    aPowerOfTwo: false,
    aSign: 'unsigned',
    aObserver: 'minmax',
    placement: { ...MODEL_QUANTIZER },
    firstLast8bit: false,
  },
  tengine: {
    name: 'tengine',
    label: 'Tengine (uint8)',
    description: 'OPEN AI LAB Tengine on Arm: uint8 asymmetric per-tensor weights and activations.',
    // ParamsTable Tengine_u8: asymmetric per-tensor 8b both, MinMaxObserver /
    // EMAMinMaxObserver. TengineQuantizer extends ModelQuantizer with cat (and sigmoid,
    // hardswish) inputs.
    wBits: 8,
    wGranularity: 'per-tensor',
    wSymmetric: false,
    wNarrowRange: false,
    wPowerOfTwo: false,
    wObserver: 'minmax',
    aBits: 8,
    aSymmetric: false,
    aNarrowRange: false,
    aPowerOfTwo: false,
    aSign: 'unsigned',
    aObserver: 'ema-minmax',
    placement: { ...MODEL_QUANTIZER, concat: true },
    firstLast8bit: false,
  },
} satisfies Record<BackendName, BackendPreset>);
