// Lesson: per-tensor weight scales round whole depthwise channels to zero.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'vanishing-channels',
  title: 'Channels that vanish',
  question:
    'What happens to a small depthwise filter when it shares one 8-bit scale with a filter a hundred times larger?',
  steps: [
    'Load the model and the sample images; the lesson sets TensorRT with per-tensor weights.',
    'Press Run, then run the analysis under "Why accuracy drops".',
    'Choose the "vanished channels" metric and open the first depthwise convolution.',
  ],
  notice: 'At least 3 of the 32 channels of the first depthwise convolution are rounded to all zeros, even at 8 bits.',
  why: 'With one scale for the whole tensor, the step size is set by the largest weight anywhere in it. Depthwise convolutions have one 3×3 filter per channel and, after batch norm is folded in, their channel ranges differ by two orders of magnitude. A channel whose largest weight is below half a step is rounded to zero entirely: its feature map disappears, and every later layer loses that input. Per-channel scales (the TensorRT default) fit a grid to each filter, so no channel vanishes.',
  link: 'v=1&backend=tensorrt&wGranularity=per-tensor&placement_hide=1',
  linkRun: 'perTensor',
  claim: {
    text: 'With per-tensor 8-bit weights (TensorRT otherwise), at least 3 channels of the first depthwise convolution are rounded to zero.',
    runs: { perTensor: { config: { backend: 'tensorrt', wGranularity: 'per-tensor' }, analyze: true } },
    checks: [{ left: { run: 'perTensor', metric: 'vanishedFirstDepthwise' }, op: '>=', right: 3 }],
  },
};
