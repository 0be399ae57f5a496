// Lesson: the simulation is only worth something if the deployed integer model behaves the same.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'deploy',
  title: 'Deploy what you simulated',
  question:
    'Does a real QDQ ONNX model, with integer weights and QuantizeLinear/DequantizeLinear at the simulated points, give the accuracy the simulation promised?',
  steps: [
    'Load the model and the sample images; the lesson sets TensorRT W8A8 with MSE activation ranges.',
    'Press Run, then "Download deployable model": the zip holds model.qdq.onnx, ranges.json and tensorrt.json.',
    'Open ranges.json and find the first activation: its scale times 127 is the amax that tensorrt.json gives TensorRT.',
    'Run model.qdq.onnx in any ONNX runtime on the same images (the CLI does it with --export DIR) and compare its top-1 with the simulated one.',
  ],
  notice:
    'The exported model agrees with the simulation on at least 97% of the images and its top-1 is within half a point.',
  why: 'Simulation ("fake quantization") rounds and clips in float: x̂ = (clamp(round(x/s) + z) − z)·s. A QDQ model says the same thing in ONNX: QuantizeLinear(x, s, z) makes the integer, DequantizeLinear turns it back. Weights are stored as integers followed by DequantizeLinear, so no runtime can re-round them differently, and every activation quantizer sits exactly where it was simulated. A runtime that fuses the pairs into integer kernels, or lays out its sums differently, keeps the same grid; only float sums in another order can tip a value sitting on a rounding tie (onnxruntime-node: about 4% of decisions; the check runs the file as written, its fusions off). The range files (TensorRT, SNPE, PPL-CUDA, Tengine) carry the same scales for toolchains that take ranges instead of a QDQ graph.',
  link: 'v=1&backend=tensorrt&aObserver=mse&placement_hide=1',
  linkRun: 'simulated',
  claim: {
    text: 'The exported TensorRT W8A8 (MSE activations) QDQ model, run as written, keeps at least 97% top-1 agreement with the simulation, and its top-1 is within 0.5 points of the simulated top-1.',
    runs: {
      simulated: { config: { backend: 'tensorrt', aObserver: 'mse' }, deploy: true },
    },
    checks: [
      { left: { run: 'simulated', metric: 'deployedAgreement' }, op: '>=', right: 97 },
      {
        left: { run: 'simulated', metric: 'deployedTop1' },
        op: '>=',
        right: { run: 'simulated', metric: 'top1' },
        margin: -0.5,
      },
      {
        left: { run: 'simulated', metric: 'deployedTop1' },
        op: '<=',
        right: { run: 'simulated', metric: 'top1' },
        margin: 0.5,
      },
    ],
  },
};
