// Lesson: MQBench's deployability question — the simulation is not what the integer kernels compute.
import type { Lesson } from './types.ts';

export const lesson: Lesson = {
  id: 'deployment-gap',
  title: 'Simulated is not deployed',
  question:
    'When the quantized model runs on real integer kernels, does it still make the decisions the simulation made?',
  steps: [
    'Load the model and the sample images; the lesson sets the TensorRT W8A8 preset.',
    'Press Run, then "Check on integer kernels": model.int8.onnx runs with onnxruntime\'s QDQ fusions (QLinearConv, QLinearAdd, …) on the same images.',
    'Read the simulated and the deployed top-1 side by side, then the agreement: the share of images whose top-1 class is the same in both.',
    'Read the first diverging layer: where the deployment first differs from the simulation by more than one integer step, and why.',
    'Switch on "Simulate the integer kernels (deploy-exact)" and run again: now the simulation predicts the deployment.',
  ],
  notice:
    'The top-1 moves by a point or two, yet the deployed model changes its top-1 class on several percent of the images; the deploy-exact simulation agrees with the deployment on at least 99% of them.',
  why: 'MQBench\'s central finding: fake quantization in float is not what an integer backend computes, so "hardware-deployable" has to be checked (its users report a simulated TensorRT 48.8% that deployed at 5.9%). Here the causes are small and add up. The kernel adds an int32 bias rounded at scale s_x·s_w to an exact sum of integer products and rounds float32(sum·M) once, with M = s_x·s_w/s_y; the simulation sums float products and adds a float bias, so a value close to a rounding tie lands one step away. A depthwise filter turns one input step into up to ten output steps, and after fifty layers a few percent of the decisions change. The deploy-exact mode computes what the kernels compute: integer codes, the int32 bias, the kernel\'s multiplier and rounding, ReLU6 absorbed into the uint8 range, saturation at the 8-bit type. With it the simulation becomes a prediction of the deployment.',
  link: 'v=1&backend=tensorrt&history_hide=1&placement_hide=1',
  linkRun: 'tensorrt',
  claim: {
    text: "On onnxruntime's integer kernels the TensorRT and SNPE W8A8 models change their top-1 class on more than 1% of the images against the simulation, while the deploy-exact simulation agrees with the deployment on at least 99%.",
    runs: {
      tensorrt: { config: { backend: 'tensorrt' }, deployInteger: true },
      snpe: { config: { backend: 'snpe' }, deployInteger: true },
    },
    checks: [
      { left: { run: 'tensorrt', metric: 'integerAgreement' }, op: '<', right: 99 },
      { left: { run: 'snpe', metric: 'integerAgreement' }, op: '<', right: 99 },
      { left: { run: 'tensorrt', metric: 'exactAgreement' }, op: '>=', right: 99 },
      { left: { run: 'snpe', metric: 'exactAgreement' }, op: '>=', right: 99 },
    ],
  },
};
