// Lesson: MinMax vs MSE vs percentile activation ranges at a low bit width.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'observers',
  title: 'MinMax, MSE or percentile ranges',
  question: 'Should the activation range cover the largest value ever seen, or clip the outliers?',
  steps: [
    'Load the model and the sample images; the lesson sets TensorRT with 6-bit activations and the MinMax observer.',
    'Press Run and note the top-1.',
    'Change the activation observer to mse, then to percentile, running each; compare in the history.',
  ],
  notice: 'MSE and percentile ranges both beat MinMax at 6-bit activations.',
  why: 'An observer chooses the clipping range of a tensor. MinMax takes the extremes seen during calibration, so a single rare outlier stretches the grid and every common value is rounded coarsely. Clipping trades a large error on a few outliers for a smaller rounding error on everything else. The MSE observer searches for the range with the lowest squared error over the calibration histogram; percentile simply drops the top 0.01% or so. At 8 bits there are enough levels that MinMax is usually fine; with fewer bits the rounding error dominates and clipping wins.',
  link: 'v=1&backend=tensorrt&aBits=6&aObserver=minmax&placement_hide=1',
  linkRun: 'minmax',
  claim: {
    text: 'At TensorRT W8A6, the MSE and the percentile activation observers each give a higher top-1 than MinMax.',
    runs: {
      minmax: { config: { backend: 'tensorrt', aBits: 6, aObserver: 'minmax' } },
      mse: { config: { backend: 'tensorrt', aBits: 6, aObserver: 'mse' } },
      percentile: { config: { backend: 'tensorrt', aBits: 6, aObserver: 'percentile' } },
    },
    checks: [
      { left: { run: 'mse', metric: 'top1' }, op: '>', right: { run: 'minmax', metric: 'top1' } },
      { left: { run: 'percentile', metric: 'top1' }, op: '>', right: { run: 'minmax', metric: 'top1' } },
    ],
  },
};
