// Lesson: how many calibration images an 8-bit model needs.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'calibration-size',
  title: 'How many calibration images?',
  question: 'Calibration measures activation ranges on sample images. Are 8 images enough, or do we need 128?',
  steps: [
    'Load the model and the sample images; the lesson sets TensorRT W8A8 with 8 calibration images.',
    'Press Run and note the drop.',
    'Set calibration images to 128 and run again; compare the two drops.',
  ],
  notice:
    'With 8 calibration images the drop is no worse than with 128 (here it is even smaller: MinMax ranges only widen as more images are seen).',
  why: 'Calibration only has to estimate one range per activation tensor. The EMA MinMax observer averages the minimum and maximum over batches; activation ranges of a trained network are similar from image to image, so a handful of images already pins them down to within a few percent, and a few percent of a range moves the 8-bit step size by a few percent — too little to change many predictions. More images matter more for observers that estimate tails (percentile, KL, MSE on a histogram) and at low bit widths, where each step is coarse and a slightly wrong range clips or wastes levels. Calibration images need no labels, but they must look like the deployment data.',
  link: 'v=1&backend=tensorrt&calib=8&placement_hide=1',
  linkRun: 'calib8',
  claim: {
    text: 'At TensorRT W8A8, calibrating on 8 images gives a top-1 drop no more than 2 points larger than calibrating on 128 (both evaluated on 872 images).',
    runs: {
      calib8: { config: { backend: 'tensorrt', calib: 8, eval: 872 } },
      calib128: { config: { backend: 'tensorrt' } },
    },
    checks: [
      { left: { run: 'calib8', metric: 'drop' }, op: '<', right: { run: 'calib128', metric: 'drop' }, margin: 2 },
    ],
  },
};
