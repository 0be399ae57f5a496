// Lesson: a signed grid wastes half its levels on activations that are never negative.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'activation-sign',
  title: 'Signed activations after ReLU waste a bit',
  question: 'After a ReLU every activation is ≥ 0. What does a signed, symmetric grid cost there?',
  steps: [
    'Load the model and the sample images; the lesson sets TensorRT with 6-bit activations, signed.',
    'Press Run and note the top-1 drop.',
    'Set activation sign to "auto" (unsigned where the calibrated range is non-negative, as OpenVINO does) and run again.',
  ],
  notice: 'Signed activations lose more top-1 points than automatic (unsigned after ReLU) ones at the same bit width.',
  why: 'A symmetric signed grid is centred on zero: half of its levels are for negative values. After ReLU (ReLU6 in MobileNet-V2) no activation is negative, so those levels are never used and the step size is twice what an unsigned grid of the same width would need: effectively one bit is lost. At 8 bits the loss is small; at 6 bits it is clearly visible. OpenVINO therefore switches activations that follow a ReLU to the unsigned range [0, 255], and asymmetric schemes avoid the problem with a zero point. The lesson uses 6 bits so the effect stands well above the sampling noise of 872 images.',
  link: 'v=1&backend=tensorrt&aBits=6&placement_hide=1',
  linkRun: 'signed',
  claim: {
    text: 'At TensorRT W8A6, signed symmetric activations lose more top-1 points than unsigned-after-ReLU ("auto") activations.',
    runs: {
      signed: { config: { backend: 'tensorrt', aBits: 6 } },
      auto: { config: { backend: 'tensorrt', aBits: 6, aSign: 'auto' } },
    },
    checks: [{ left: { run: 'signed', metric: 'drop' }, op: '>', right: { run: 'auto', metric: 'drop' } }],
  },
};
