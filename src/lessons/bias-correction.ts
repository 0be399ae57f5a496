// Lesson: bias correction repairs most of the 4-bit collapse without retraining.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'bias-correction',
  title: 'Bias correction rescues 4-bit weights',
  question: 'Can a forward-only fix, with no training, recover a model whose 4-bit weights broke it?',
  steps: [
    'Load the model and the sample images; the lesson sets TensorRT W4A8 with bias correction on.',
    'Press Run. The result shows the accuracy before and after the correction.',
  ],
  notice: 'Bias correction adds at least 40 top-1 points over the uncorrected W4A8 model.',
  why: "Rounding a filter's weights changes the filter's average response: the quantized layer's output mean drifts away from the FP32 mean, channel by channel. A bias is exactly the knob that moves a channel's mean. Bias correction runs the calibration images through both models, measures each channel's mean output error, and subtracts it from that channel's bias, layer by layer so each layer sees its corrected predecessors. It costs a few forward passes, needs no labels and no gradients, and removes the systematic part of the error that compounded through the network. What it cannot remove is the random part (the variance change), so the corrected model is still below FP32.",
  link: 'v=1&backend=tensorrt&wBits=4&biasCorrection=1&placement_hide=1',
  linkRun: 'corrected',
  claim: {
    text: 'At TensorRT W4A8 (MinMax weights), bias correction adds at least 40 top-1 points.',
    runs: { corrected: { config: { backend: 'tensorrt', wBits: 4, biasCorrection: true } } },
    checks: [{ left: { run: 'corrected', metric: 'fixGain' }, op: '>=', right: 40 }],
  },
};
