// Lesson: 4-bit weights with MinMax ranges collapse the model, and the analysis shows the weights are to blame.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'low-bit-collapse',
  title: 'A low-bit collapse: whose fault is it?',
  question: 'With 4-bit weights and 8-bit activations MobileNet-V2 falls apart. Is it the weights or the activations?',
  steps: [
    'Load the model and the sample images; the lesson sets TensorRT with 4-bit weights (MinMax ranges).',
    'Press Run: the quantized top-1 falls far below FP32.',
    'Open "Why accuracy drops" below the result and run the analysis: compare weight-only and activation-only accuracy.',
  ],
  notice:
    'Top-1 falls below 25%. With only the weights quantized the model is just as broken; with only the activations quantized it is close to FP32.',
  why: "A 4-bit grid has only 15 steps. MinMax sets each channel's scale from its largest weight, so in a channel with one large weight every other weight is rounded to one of a few levels, many to zero. The errors are not small noise any more: they shift each layer's output mean and variance, and the shift compounds through 50 layers until the final features carry little of the image. Splitting the error answers whose fault it is: quantizing only the weights reproduces the collapse, quantizing only the activations (still 8 bits) barely matters. The fixes must therefore target the weights: better ranges (MSE), bias correction, or more bits for the sensitive layers.",
  link: 'v=1&backend=tensorrt&wBits=4&placement_hide=1',
  linkRun: 'w4a8',
  claim: {
    text: 'TensorRT W4A8 with MinMax weights falls below 25% top-1; weight-only quantization is also below 25% while activation-only stays within 5 points of FP32.',
    runs: { w4a8: { config: { backend: 'tensorrt', wBits: 4 }, analyze: true } },
    checks: [
      { left: { run: 'w4a8', metric: 'top1' }, op: '<', right: 25 },
      { left: { run: 'w4a8', metric: 'weightOnly' }, op: '<', right: 25 },
      { left: { run: 'w4a8', metric: 'activationOnly' }, op: '>', right: { run: 'w4a8', metric: 'fp32' }, margin: -5 },
    ],
  },
};
