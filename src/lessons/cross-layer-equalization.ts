// Lesson: per-tensor weights lose MobileNet-V2's lopsided channels; equalizing them first helps.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'cross-layer-equalization',
  title: 'Cross-layer equalization for per-tensor weights',
  question:
    'With one weight scale per layer, can rescaling channels between layers win back accuracy without changing the float model?',
  steps: [
    'Load the model and the sample images; the lesson sets the SNPE preset (per-tensor asymmetric weights, MinMax) at W8A8 with cross-layer equalization and bias correction on.',
    'Press Run and note the top-1 and the top-1 before fixes (equalization alone).',
    'Turn both off and run again: that is the plain SNPE W8A8 model.',
  ],
  notice: 'Equalization plus bias correction beats the plain per-tensor model by at least 0.5 points of top-1.',
  why: 'A per-tensor quantizer gives every output channel of a layer the same grid, sized by the largest channel. In MobileNet-V2 the channel ranges of a depthwise conv differ by a factor of over 1,000, so small channels keep only a few levels or round to zero. Between two convolutions joined by a ReLU, channel i of the first can be divided by s and the matching input channel of the second multiplied by s without changing the float network, because ReLU(x/s) = ReLU(x)/s. Choosing s so both sides get the same range makes every channel use the grid. ReLU6 is not scale-equivariant; here it becomes a ReLU followed by a per-channel clip at 6/s, so the float model is unchanged exactly. Bias correction then removes the remaining mean shift of each channel.',
  link: 'v=1&backend=snpe&biasCorrection=1&cle=1&placement_hide=1',
  linkRun: 'equalized',
  claim: {
    text: 'At SNPE W8A8 (per-tensor weights), cross-layer equalization with bias correction beats the plain model by at least 0.5 top-1 points.',
    runs: {
      plain: { config: { backend: 'snpe' } },
      equalized: { config: { backend: 'snpe', cle: true, biasCorrection: true } },
    },
    checks: [
      { left: { run: 'equalized', metric: 'top1' }, op: '>=', right: { run: 'plain', metric: 'top1' }, margin: 0.5 },
    ],
  },
};
