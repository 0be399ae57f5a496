// Lesson: quantization error shifts activation statistics more and more with depth.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'bn-drift',
  title: 'Drift grows with depth',
  question: 'Where in the network does the quantized model stop behaving like the FP32 one?',
  steps: [
    'Load the model and the sample images; the lesson sets TensorRT W4A8.',
    'Press Run, then run the analysis under "Why accuracy drops".',
    'Choose the "drift" metric in network order and look at the per-channel drift map.',
  ],
  notice: 'The mean shift of the layer outputs (|Δμ|/σ) is several times larger in the last third of the layers than in the first third.',
  why:
    'Each layer\'s output statistics (the per-channel mean and spread that batch norm was trained on) are shifted a little by its own rounding error, and the next layer receives the already shifted input and adds its own shift. The errors do not cancel: biased rounding in one layer becomes a biased input to the next, so the drift accumulates with depth. Batch norm was folded into the weights, so nothing re-normalises the features on the way. This is what BN re-estimation and bias correction repair: they measure the drift on calibration images and move each channel back, layer by layer from the input.',
  link: 'v=1&backend=tensorrt&wBits=4&history_hide=1&placement_hide=1',
  linkRun: 'w4a8',
  claim: {
    text: 'At TensorRT W4A8, the mean output drift of the last third of the layers is at least twice that of the first third.',
    runs: { w4a8: { config: { backend: 'tensorrt', wBits: 4 }, analyze: true } },
    checks: [{ left: { run: 'w4a8', metric: 'driftLateOverEarly' }, op: '>=', right: 2 }],
  },
};
