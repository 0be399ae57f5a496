// Lesson: 8-bit weights and activations cost MobileNet-V2 almost nothing.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'w8a8-almost-free',
  title: 'W8A8 is almost free',
  question: 'How much accuracy does MobileNet-V2 lose when every weight and activation is stored in 8 bits?',
  steps: [
    'Load the MobileNet-V2 model and the sample images.',
    'The lesson sets the TensorRT preset (8-bit per-channel weights, 8-bit per-tensor activations) with the MSE activation observer.',
    'Press Run and compare the FP32 and quantized rows of the result.',
  ],
  notice:
    'The top-1 drop is under 2 points and the quantized model agrees with FP32 on most images; the 95% intervals of the two rows overlap.',
  why: 'An 8-bit grid has 255 steps. Per-channel weights give every output channel its own scale, so each filter is rounded on a grid fitted to it, and the rounding error is about 0.3% of the channel range. Activations share one scale per tensor, but the MSE observer clips rare outliers so the grid spends its steps where most values lie. The network sees small, nearly independent errors at every layer; they partly average out, and most images stay far enough from a decision boundary that the top-1 class does not change. That is why 8-bit post-training quantization is the default for deployment: no retraining, a quarter of the memory, integer arithmetic, and about one point of accuracy.',
  link: 'v=1&backend=tensorrt&aObserver=mse&placement_hide=1',
  linkRun: 'w8a8',
  claim: {
    text: 'TensorRT W8A8 with MSE activations loses less than 2 top-1 points and agrees with FP32 on at least 85% of images.',
    runs: { w8a8: { config: { backend: 'tensorrt', aObserver: 'mse' } } },
    checks: [
      { left: { run: 'w8a8', metric: 'drop' }, op: '<', right: 2 },
      { left: { run: 'w8a8', metric: 'agreement' }, op: '>=', right: 85 },
    ],
  },
};
