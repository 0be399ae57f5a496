// Lesson: choosing each weight's rounding direction (AdaRound, GPTQ) instead of rounding to nearest.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'adaround',
  title: 'Rounding to nearest is not the best rounding',
  question:
    'At 4-bit weights, can choosing whether each weight rounds up or down, instead of to the nearest level, win back the accuracy?',
  steps: [
    'Load the model and the sample images; the lesson sets the Academic preset at W4A8 with AdaRound.',
    "Press Run (AdaRound solves one small problem per layer: a few minutes). The chart beside the result shows each layer's reconstruction error before and after, and how many weights were rounded away from nearest.",
    'Set Rounding to none and run again: that is round-to-nearest. Then try GPTQ.',
    'Back on AdaRound, set Rounding inputs to "FP32 model" and run: each layer is now fitted on the FP32 model\'s inputs instead of the quantized model\'s. Then add BN re-estimation to it.',
  ],
  notice:
    "AdaRound lifts W4A8 from single digits to about 80% top-1, a couple of points under FP32; flipping only a fraction of the roundings does it. Fitted on FP32 inputs it lands around 70%: each layer's small error goes uncorrected into the next.",
  why: "Round-to-nearest makes each weight as close as possible to its float value, one weight at a time. But a layer's output sums many weights times inputs, so neighbouring errors can cancel or add up. What matters is the output error ‖WX − ŴX‖², which depends on the inputs' correlations G = XXᵀ. AdaRound (Nagel et al. 2020) relaxes each up-or-down choice into a soft variable and minimises that error plus a term pushing every variable to 0 or 1; the gradient is 2·ΔW·G, a matrix product, so no autograd is needed. GPTQ rounds one input column at a time and moves its error onto the columns not yet rounded. Neither changes the grid: the model stays the same integers. Which inputs a layer is fitted on matters too. Fitted on what the quantized model really feeds it (earlier layers already rounded, as MQBench does), a layer also cancels what the layers before it got wrong; fitted on FP32 inputs, it prepares for a situation the quantized model never reaches, and the errors add up.",
  link: 'v=1&backend=academic&wBits=4&ptq=adaround&ptqInputs=quantized-prefix&placement_hide=1',
  linkRun: 'adaround',
  claim: {
    text: "At Academic W4A8, AdaRound on the quantized model's inputs adds at least 40 top-1 points over round-to-nearest, and at least 5 over AdaRound fitted on FP32 inputs.",
    runs: {
      nearest: { config: { backend: 'academic', wBits: 4 } },
      adaround: { config: { backend: 'academic', wBits: 4, ptq: 'adaround', ptqInputs: 'quantized-prefix' } },
      fp32Inputs: { config: { backend: 'academic', wBits: 4, ptq: 'adaround', ptqInputs: 'fp32' } },
    },
    checks: [
      { left: { run: 'adaround', metric: 'top1' }, op: '>=', right: { run: 'nearest', metric: 'top1' }, margin: 40 },
      { left: { run: 'adaround', metric: 'top1' }, op: '>=', right: { run: 'fp32Inputs', metric: 'top1' }, margin: 5 },
    ],
  },
};
