// Lesson: a few sensitive layers carry most of the 4-bit loss; keeping them at 8 bits is cheap.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'mixed-precision',
  title: 'Mixed precision: keep the sensitive layers at 8 bits',
  question: 'If 4-bit weights break the model, do all layers need more bits, or only a few?',
  steps: [
    'Load the model and the sample images; the lesson sets Academic W4A8 with MinMax observers and keeps three layers (Conv_2, Conv_4, Conv_9) at 8 bits.',
    'Press Run and note the top-1.',
    'Clear the per-layer bits and run again: every layer is at 4 bits.',
    'On the command line, --keep-sensitive 0,1,3,5 ranks all layers by sensitivity and prints size versus top-1.',
  ],
  notice:
    'Keeping the three most sensitive layers at 8 bits adds at least 15 top-1 points for under 0.1% more weight memory.',
  why: 'Sensitivity measures how much the model changes when only one layer is quantized to 4 bits. In MobileNet-V2 the most sensitive layers are the first depthwise conv and a few early projection convs: small layers (hundreds to a few thousand weights) whose channels have very different ranges, so a 16-level grid wipes out whole channels, and every later layer inherits the damage. Because they are small, keeping them at 8 bits costs almost nothing in model size, while it removes a large share of the 4-bit error. The rest of the loss is spread thinly over many layers, so each further layer kept at 8 bits gains less. This is the idea behind mixed-precision search: spend bits where the sensitivity is.',
  link: 'v=1&backend=academic&wBits=4&wObserver=minmax&aObserver=minmax&layerBits=Conv_2%3D8%2CConv_4%3D8%2CConv_9%3D8&placement_hide=1',
  linkRun: 'kept',
  claim: {
    text: 'At Academic W4A8 (MinMax), keeping the three most sensitive layers (Conv_2, Conv_9, Conv_4) at 8 bits adds at least 15 top-1 points.',
    runs: {
      all4: { config: { backend: 'academic', wBits: 4, wObserver: 'minmax', aObserver: 'minmax' } },
      kept: {
        config: {
          backend: 'academic',
          wBits: 4,
          wObserver: 'minmax',
          aObserver: 'minmax',
          layerBits: { Conv_2: 8, Conv_9: 8, Conv_4: 8 },
        },
      },
    },
    checks: [{ left: { run: 'kept', metric: 'top1' }, op: '>=', right: { run: 'all4', metric: 'top1' }, margin: 15 }],
  },
};
