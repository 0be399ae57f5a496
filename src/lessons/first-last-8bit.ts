// Lesson: the first and last layers are the most sensitive; keeping them at 8 bits helps a low-bit model.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'first-last-8bit',
  title: 'Does keeping the first and last layer at 8 bits help?',
  question:
    'Research papers quote W4A8 results with the first and last layer kept at 8 bits. How much does that exception buy?',
  steps: [
    'Load the model and the sample images; the lesson sets TensorRT W4A8 with bias correction and "first/last layer 8-bit" on.',
    'Press Run and note the top-1.',
    'Turn "first/last layer 8-bit" off and run again.',
  ],
  notice:
    'On MobileNet-V2 with bias correction, keeping the first convolution and the classifier at 8 bits changes top-1 by less than 2 points: the damage is in the middle layers.',
  why: "The first convolution sees raw pixels with only three input channels, so each output depends on few weights and a rounding error in one of them is not averaged away. The classifier decides directly between 1,000 classes: its errors move logits without any later layer to absorb them. Together they hold a small share of the weights, so keeping them at 8 bits costs little memory. On MobileNet-V2, though, the 4-bit damage sits in the depthwise and bottleneck layers, so this exception buys little here. MQBench's academic setting does this by default, which is why published low-bit numbers are not directly comparable with fully quantized deployments.",
  link: 'v=1&backend=tensorrt&wBits=4&firstLast8bit=1&biasCorrection=1&placement_hide=1',
  linkRun: 'kept',
  claim: {
    text: 'At TensorRT W4A8 with bias correction, keeping the first and last layer at 8 bits changes top-1 by less than 2 points.',
    runs: {
      kept: { config: { backend: 'tensorrt', wBits: 4, firstLast8bit: true, biasCorrection: true } },
      all4: { config: { backend: 'tensorrt', wBits: 4, biasCorrection: true } },
    },
    checks: [
      { left: { run: 'kept', metric: 'top1' }, op: '<', right: { run: 'all4', metric: 'top1' }, margin: 2 },
      { left: { run: 'kept', metric: 'top1' }, op: '>', right: { run: 'all4', metric: 'top1' }, margin: -2 },
    ],
  },
};
