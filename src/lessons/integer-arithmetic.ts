// Lesson: one output of an integer convolution computed by hand, checked against the kernel.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'integer-arithmetic',
  title: 'An integer convolution by hand',
  question:
    'What does an 8-bit kernel compute for one output value, and does a hand computation land on the same integer?',
  steps: [
    'Load the model and the sample images; the lesson sets the FBGEMM W8A8 preset (uint8 activations, int8 per-channel weights).',
    'Press Run, then "Check on integer kernels", and open the integer arithmetic of block 1 · depthwise 3×3.',
    'For the centre output of channel 0, follow the nine int8 × uint8 products (each input minus its zero point), their int32 sum and the int32 bias.',
    'Multiply by M = s_x·s_w/s_y, round, add the output zero point; then do it again with the fixed-point multiplier M0 and the shift n.',
    "Check your integer against the one the kernel wrote, and how many of the layer's outputs the hand computation matches.",
  ],
  notice:
    "The hand computation gives the kernel's byte for every output of the layer; the fixed-point version (M0·2^−n) is one step off on about one output in a hundred, where the value sits near a half step.",
  why: 'Integer inference does not dequantize inside a layer. An input is stored as a byte q_x with x = s_x(q_x − z_x), a weight as q_w with w = s_w·q_w, so the float sum Σxw is s_x·s_w·Σ(q_x − z_x)q_w: products of 8-bit integers accumulated in an int32, exactly. The bias is stored as an int32 at the same scale s_x·s_w and adds straight into that sum. One multiplier M = s_x·s_w/s_y turns the int32 into output steps: onnxruntime multiplies in float32 and rounds half to even; gemmlowp and TFLite avoid floats and write M = M0·2^−n with M0 an int32 in [2^30, 2^31), a rounding high multiply and a rounding right shift, which round twice and can land one step off near a half step. Adding z_y and saturating to 0…255 gives the output byte. ReLU6 costs nothing: the saturation of the uint8 range already clips there.',
  link: 'v=1&backend=fbgemm&history_hide=1&placement_hide=1',
  linkRun: 'fbgemm',
  claim: {
    text: "For every output of MobileNet-V2's block 1 depthwise convolution (FBGEMM W8A8, one image), the hand computation with onnxruntime's float32 multiplier gives the integer kernel's byte, and the fixed-point multiplier gives it for at least 99% of them.",
    runs: { fbgemm: { config: { backend: 'fbgemm' }, deployInteger: true } },
    checks: [
      { left: { run: 'fbgemm', metric: 'pixelMatch' }, op: '>=', right: 100 },
      { left: { run: 'fbgemm', metric: 'fixedPointMatch' }, op: '>=', right: 99 },
    ],
  },
};
