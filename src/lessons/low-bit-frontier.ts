// Lesson: at 4-bit weights and activations, reconstructing whole blocks with learned step sizes (BRECQ, QDrop) beats per-layer AdaRound.
import type { ConfigOverrides, Lesson } from './types.ts';

/** The lesson's runs: W4A4, 32 calibration images, 200 steps per block or layer (see docs/reconstruction-low-bit.md). */
const W4A4: ConfigOverrides = { backend: 'academic', wBits: 4, aBits: 4, calib: 32, ptqIters: 200 };

export const lesson: Lesson = {
  id: 'low-bit-frontier',
  title: 'The low-bit frontier: reconstructing blocks',
  question:
    'At 4-bit weights and 4-bit activations, does fitting whole blocks with learned activation step sizes beat fitting one layer at a time?',
  steps: [
    'Load the model and the sample images; the lesson sets the Academic preset at W4A4 with QDrop, 32 calibration images and 200 steps per block.',
    "Press Run. QDrop reconstructs MobileNet-V2 block by block (18 blocks; the counter shows which, Cancel stops between steps). On onnxruntime-node on a shared 2-core machine one such run took 4 to 9 minutes; a browser takes longer. The chart beside the result shows each block's output error on entry and after.",
    'Set Rounding to BRECQ and run again: the same block reconstruction, without dropping activation quantization.',
    'Set Rounding to AdaRound (one layer at a time, calibrated activation ranges), then to none (round to nearest), and compare the four results in the history.',
  ],
  notice:
    "Round-to-nearest and AdaRound stay near 1% top-1. BRECQ reaches about a third, QDrop a few points more: far below FP32's 84% after only 200 steps per block (MQBench runs 20,000), but in MQBench's order.",
  why: "At 4-bit activations the error no longer comes from the weights alone: every activation is rounded to one of 16 levels, and a layer fitted on its own cannot know how the next layer's activation quantizer will treat its output. BRECQ (Li et al. 2021) fits the rounding of every weight in a block at once against the block's FP32 output, so the layers of a block make up for each other, and it learns each activation quantizer's step size in the same gradient descent (LSQ). QDrop (Wei et al. 2022) leaves each activation unquantized at random (probability ½) while a block is fitted, so the rounding does not overfit one pattern of activation errors and holds up when every activation is quantized. MQBench's benchmark on ImageNet (MobileNet-V2, W4A4, 10,000 to 20,000 steps) finds QDrop 68.1, BRECQ 67.2, AdaRound 65.7. Here the gradients come from backward graphs written op by op and run on the same engine as the model.",
  link: 'v=1&backend=academic&wBits=4&aBits=4&calib=32&ptq=qdrop&ptqIters=200&ptqInputs=quantized-prefix&placement_hide=1',
  linkRun: 'qdrop',
  claim: {
    text: 'At Academic W4A4 with 32 calibration images and 200 steps, per-layer AdaRound stays below 5% top-1, BRECQ adds at least 20 points over it, QDrop is at least as good as BRECQ and at least 30 points above round-to-nearest.',
    runs: {
      nearest: { config: { ...W4A4 } },
      adaround: { config: { ...W4A4, ptq: 'adaround' } },
      brecq: { config: { ...W4A4, ptq: 'brecq' } },
      qdrop: { config: { ...W4A4, ptq: 'qdrop' } },
    },
    checks: [
      { left: { run: 'adaround', metric: 'top1' }, op: '<', right: 5 },
      { left: { run: 'brecq', metric: 'top1' }, op: '>=', right: { run: 'adaround', metric: 'top1' }, margin: 20 },
      { left: { run: 'qdrop', metric: 'top1' }, op: '>=', right: { run: 'brecq', metric: 'top1' } },
      { left: { run: 'qdrop', metric: 'top1' }, op: '>=', right: { run: 'nearest', metric: 'top1' }, margin: 30 },
    ],
  },
};
