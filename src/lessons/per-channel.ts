// Lesson: per-channel weight scales vs one scale per tensor.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'per-channel',
  title: 'Per-tensor vs per-channel weights',
  question: 'Does giving every output channel its own weight scale matter, and when?',
  steps: [
    'Load the model and the sample images; the lesson sets TensorRT with 6-bit per-tensor weights.',
    'Press Run and note the top-1.',
    'Switch weight granularity to per-channel and run again; compare in the history.',
    'Now set weight bits to 8 and run both granularities again.',
  ],
  notice:
    'At 6 bits per-tensor weights collapse (about 11% top-1) while per-channel weights keep about 72%; at 8 bits the two are within a point or two of each other, so the damage hides in a few layers (see the vanished channels lesson) until the bit width drops.',
  why: "A weight tensor's channels can have very different ranges, especially in depthwise convolutions after batch norm is folded into them. One scale per tensor must cover the widest channel, so narrow channels get only a few of the levels and lose most of their precision, or round to zero. At 8 bits there are 255 levels and most channels survive; every bit less halves the levels, and at 6 bits the narrow channels of MobileNet-V2 are gone. Per-channel quantization costs nothing at inference time on hardware that supports it: the per-channel scale folds into the output rescaling of the integer convolution. That is why TensorRT, OpenVINO and FBGEMM use it for weights, while per-tensor backends (SNPE, Vitis) suffer on depthwise networks like MobileNet-V2.",
  link: 'v=1&backend=tensorrt&wBits=6&wGranularity=per-tensor&placement_hide=1',
  linkRun: 'perTensor6',
  claim: {
    text: 'At 6-bit weights (TensorRT otherwise), per-tensor weights lose at least 40 top-1 points more than per-channel weights; at 8 bits the two drops are within 2 points of each other.',
    runs: {
      perTensor6: { config: { backend: 'tensorrt', wBits: 6, wGranularity: 'per-tensor' } },
      perChannel6: { config: { backend: 'tensorrt', wBits: 6 } },
      perTensor8: { config: { backend: 'tensorrt', wGranularity: 'per-tensor' } },
      perChannel8: { config: { backend: 'tensorrt' } },
    },
    checks: [
      {
        left: { run: 'perTensor6', metric: 'drop' },
        op: '>=',
        right: { run: 'perChannel6', metric: 'drop' },
        margin: 40,
      },
      {
        left: { run: 'perTensor8', metric: 'drop' },
        op: '<',
        right: { run: 'perChannel8', metric: 'drop' },
        margin: 2,
      },
      {
        left: { run: 'perTensor8', metric: 'drop' },
        op: '>',
        right: { run: 'perChannel8', metric: 'drop' },
        margin: -2,
      },
    ],
  },
};
