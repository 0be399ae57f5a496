// Lesson: per-channel weight scales vs one scale per tensor.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'per-channel',
  title: 'Per-tensor vs per-channel weights',
  question: 'Does giving every output channel its own scale matter at 8 bits?',
  steps: [
    'Load the model and the sample images; the lesson sets TensorRT with per-tensor weights.',
    'Press Run and note the top-1 drop.',
    'Switch weight granularity back to per-channel (or reset the field) and run again; compare in the history.',
  ],
  notice: 'Per-tensor weights lose more than per-channel ones at the same 8 bits, though at 8 bits only by about a point (inside the 95% intervals): the damage is real but hidden in a few layers (see the vanished channels lesson) and grows quickly at lower bit widths.',
  why:
    'A weight tensor\'s channels can have very different ranges, especially in depthwise convolutions after batch norm is folded into them. One scale per tensor must cover the widest channel, so narrow channels get only a few of the 255 levels and lose most of their precision (some vanish). Per-channel quantization costs nothing at inference time on hardware that supports it: the per-channel scale folds into the output rescaling of the integer convolution. That is why TensorRT, OpenVINO and FBGEMM use it for weights, while per-tensor backends (SNPE, Vitis) suffer on depthwise networks like MobileNet-V2.',
  link: 'v=1&backend=tensorrt&wGranularity=per-tensor&history_hide=1&placement_hide=1',
  linkRun: 'perTensor',
  claim: {
    text: 'At 8 bits (TensorRT), per-tensor weights lose more top-1 points than per-channel weights.',
    runs: {
      perTensor: { config: { backend: 'tensorrt', wGranularity: 'per-tensor' } },
      perChannel: { config: { backend: 'tensorrt' } },
    },
    checks: [{ left: { run: 'perTensor', metric: 'drop' }, op: '>', right: { run: 'perChannel', metric: 'drop' } }],
  },
};
