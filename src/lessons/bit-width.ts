// Lesson: accuracy against weight bit width, 8 → 6 → 4.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'bit-width',
  title: '8, 6 or 4 bits',
  question: 'Every bit removed halves the number of levels. Does accuracy fall smoothly?',
  steps: [
    'Load the model and the sample images; the lesson sets TensorRT with 6-bit weights.',
    'Press Run, then set weight bits to 8 and to 4 and run each; compare in the history.',
  ],
  notice:
    'Accuracy falls by several points from 8 to 6 bits, then collapses at 4 bits (below 25%): the step from 6 to 4 bits costs far more than the step from 8 to 6.',
  why: 'The rounding error of a uniform grid is proportional to its step, and the step doubles with each bit removed, so the noise power grows fourfold (6 dB per bit). A network tolerates noise up to a point: while the noise is small compared with the margin between the top classes, most predictions do not change, so 8 and 6 bits lose a few points (MinMax ranges make 6 bits costlier than it needs to be). Past that point the errors change the features themselves, they compound through the layers, and accuracy falls off a cliff rather than a slope. Where the cliff lies depends on the range of the weights, which is why better observers, per-channel scales and bias correction move it.',
  link: 'v=1&backend=tensorrt&wBits=6&placement_hide=1',
  linkRun: 'w6',
  claim: {
    text: 'With TensorRT (MinMax per-channel weights, 8-bit activations), W8 > W6 > W4 in top-1, W6 is at least 30 points above W4, and W4 falls below 25%.',
    runs: {
      w8: { config: { backend: 'tensorrt' } },
      w6: { config: { backend: 'tensorrt', wBits: 6 } },
      w4: { config: { backend: 'tensorrt', wBits: 4 } },
    },
    checks: [
      { left: { run: 'w8', metric: 'top1' }, op: '>', right: { run: 'w6', metric: 'top1' } },
      { left: { run: 'w6', metric: 'top1' }, op: '>', right: { run: 'w4', metric: 'top1' } },
      { left: { run: 'w6', metric: 'top1' }, op: '>=', right: { run: 'w4', metric: 'top1' }, margin: 30 },
      { left: { run: 'w4', metric: 'top1' }, op: '<', right: 25 },
    ],
  },
};
