// Lesson: choosing each weight's rounding direction (AdaRound, GPTQ) instead of rounding to nearest.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'adaround',
  title: 'Rounding to nearest is not the best rounding',
  question: 'At 4-bit weights, can choosing whether each weight rounds up or down, instead of to the nearest level, win back the accuracy?',
  steps: [
    'Load the model and the sample images; the lesson sets the Academic preset at W4A8 with AdaRound.',
    'Press Run (AdaRound solves one small problem per layer: a few minutes). The chart beside the result shows each layer\'s reconstruction error before and after, and how many weights were rounded away from nearest.',
    'Set Rounding to none and run again: that is round-to-nearest. Then try GPTQ.',
    'Add BN re-estimation to any of them and compare.',
  ],
  notice: 'AdaRound lifts W4A8 from single digits to roughly 70% top-1, well above GPTQ; flipping only a fraction of the roundings does it.',
  why:
    'Round-to-nearest makes each weight as close as possible to its float value, one weight at a time. But a layer\'s output is a sum over many weights times inputs, and the errors of neighbouring weights can cancel or add up. What matters is the output error ‖WX − ŴX‖², which depends on the inputs\' correlations G = XXᵀ: (ΔW)G(ΔW)ᵀ. AdaRound (Nagel et al. 2020) relaxes each up-or-down choice into a soft variable, minimises that output error plus a term that pushes every variable to 0 or 1, and then rounds; the gradient is 2·ΔW·G, a matrix product, so no autograd is needed. GPTQ rounds one input column at a time and moves its error onto the columns not yet rounded. Both need only the calibration images, and neither changes the grid: the model stays deployable as the same integers.',
  link: 'v=1&backend=academic&wBits=4&ptq=adaround&history_hide=1&placement_hide=1',
  linkRun: 'adaround',
  claim: {
    text: 'At Academic W4A8, AdaRound adds at least 40 top-1 points over round-to-nearest and beats GPTQ by at least 5 points.',
    runs: {
      nearest: { config: { backend: 'academic', wBits: 4 } },
      adaround: { config: { backend: 'academic', wBits: 4, ptq: 'adaround' } },
      gptq: { config: { backend: 'academic', wBits: 4, ptq: 'gptq' } },
    },
    checks: [
      { left: { run: 'adaround', metric: 'top1' }, op: '>=', right: { run: 'nearest', metric: 'top1' }, margin: 40 },
      { left: { run: 'adaround', metric: 'top1' }, op: '>=', right: { run: 'gptq', metric: 'top1' }, margin: 5 },
    ],
  },
};
