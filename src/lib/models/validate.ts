/**
 * Checks that a parsed ONNX graph is an image classifier the pipeline can run — one float
 * image input [N,3,H,W] or [N,H,W,3] with a known square size, one [N,K] class output —
 * and describes it (ClassifierInfo). It turns "any user CNN" into precise QpErrors with
 * stable codes and full-sentence messages instead of failures deep inside calibration.
 *
 * Must not: modify the graph, run it, or guess silently: when the spatial size is symbolic
 * the caller must pass `inputSize` (the UI asks the user).
 */
import type { Graph, Node, ValueInfo } from '../onnx/ir.ts';
import { producerOf } from '../onnx/ir.ts';
import { QpError } from '../util/errors.ts';

export interface ClassifierInfo {
  inputName: string;
  layout: 'NCHW' | 'NHWC';
  /** square spatial size in pixels (height = width) */
  size: number;
  channels: 3;
  /** number of classes K of the output */
  classes: number;
  /** fixed batch size, or 'dynamic' when the batch dimension is symbolic or unknown */
  batch: number | 'dynamic';
  outputName: string;
  /** the output is produced by Softmax (probabilities, not logits); top-k is unaffected */
  endsWithSoftmax: boolean;
}

export interface ValidateOptions {
  /** number of labels the user's label map has; checked against the class count */
  labels?: number;
  /** spatial size to use when the model's height/width are symbolic (e.g. 224) */
  inputSize?: number;
}

type Dim = number | string | null;

const fmtShape = (s: Dim[] | null): string =>
  s ? `[${s.map((d) => (d === null ? '?' : String(d))).join(', ')}]` : 'of undeclared shape';

/** Ops between the classifier layer and the output that do not change class scores' meaning. */
const PASS_THROUGH = new Set(['Identity', 'Flatten', 'Reshape', 'Squeeze', 'Dropout', 'Softmax', 'LogSoftmax', 'Cast']);

/**
 * Validate `g` as an image classifier and describe its input and output.
 * Throws QpError: MODEL_INPUT_COUNT, MODEL_INPUT_NOT_IMAGE, MODEL_INPUT_SIZE_UNKNOWN,
 * MODEL_OUTPUT_NOT_CLASSES, MODEL_CLASS_COUNT_MISMATCH, MODEL_UNSUPPORTED (float16/64
 * or non-square input), ARG_INVALID (bad `inputSize` / `labels` option).
 */
export function validateClassifier(g: Graph, opts: ValidateOptions = {}): ClassifierInfo {
  if (opts.inputSize !== undefined && !(Number.isInteger(opts.inputSize) && opts.inputSize > 0)) {
    throw new QpError(
      'ARG_INVALID',
      `The input size must be a positive whole number of pixels (e.g. 224), got ${opts.inputSize}.`,
    );
  }
  if (opts.labels !== undefined && !(Number.isInteger(opts.labels) && opts.labels >= 0)) {
    throw new QpError('ARG_INVALID', `The label count must be a whole number, got ${opts.labels}.`);
  }
  const input = checkInput(g);
  const { layout, size } = imageLayout(input, opts.inputSize);
  const b = input.shape![0];
  const batch = typeof b === 'number' && b > 0 ? b : 'dynamic';
  const producers = producerOf(g);
  const { output, classes } = pickOutput(g, producers);

  if (opts.labels !== undefined && opts.labels !== classes) {
    throw new QpError(
      'MODEL_CLASS_COUNT_MISMATCH',
      `The model outputs ${classes} classes but the label map has ${opts.labels} labels. Supply a label file with ${classes} classes, or choose the model these labels belong to.`,
    );
  }
  return {
    inputName: input.name,
    layout,
    size,
    channels: 3,
    classes,
    batch,
    outputName: output.name,
    endsWithSoftmax: endsWith(output.name, producers, 'Softmax'),
  };
}

function checkInput(g: Graph): ValueInfo {
  if (g.inputs.length !== 1) {
    const names = g.inputs.map((v) => `"${v.name}" ${fmtShape(v.shape)}`).join(', ');
    throw new QpError(
      'MODEL_INPUT_COUNT',
      g.inputs.length === 0
        ? 'The model has no inputs (every graph input is a stored weight). An image classifier takes one image tensor: export it with the image as its only input.'
        : `The model has ${g.inputs.length} inputs (${names}); an image classifier takes exactly one image tensor. Export it with the image as its only input (fold the others into constants).`,
    );
  }
  const input = g.inputs[0];
  const s = input.shape;
  if (input.dtype === 'float16' || input.dtype === 'float64') {
    throw new QpError(
      'MODEL_UNSUPPORTED',
      `The model's input "${input.name}" is ${input.dtype}; the pipeline feeds float32 images. Convert the model to float32 (e.g. onnxconverter-common's float16 → float32) and load it again.`,
    );
  }
  if (input.dtype !== 'float32' || !s || s.length !== 4) {
    const integer = /^u?int/.test(input.dtype);
    const what =
      integer && s?.length === 4
        ? ' It seems to take raw integer pixels: export it with a float32 image input (normalization inside or outside the graph).'
        : integer
          ? ' This looks like a text or tabular model (integer ids).'
          : input.dtype === 'bool'
            ? ' This does not look like an image model.'
            : '';
    throw new QpError(
      'MODEL_INPUT_NOT_IMAGE',
      `The model's input "${input.name}" is ${input.dtype === 'other' ? 'not a plain tensor' : input.dtype} ${fmtShape(s)}, not an image: an image classifier takes float32 [batch, 3, height, width] (or [batch, height, width, 3]).${what} Load a CNN image classifier.`,
    );
  }
  return input;
}

function imageLayout(input: ValueInfo, inputSize: number | undefined): { layout: 'NCHW' | 'NHWC'; size: number } {
  const s = input.shape!;
  let layout: 'NCHW' | 'NHWC';
  if (s[1] === 3) layout = 'NCHW';
  else if (s[3] === 3) layout = 'NHWC';
  else {
    throw new QpError(
      'MODEL_INPUT_NOT_IMAGE',
      `The model's input "${input.name}" has shape ${fmtShape(s)}: no dimension of 3 colour channels where NCHW [batch, 3, H, W] or NHWC [batch, H, W, 3] puts it. Only RGB image classifiers are supported; grayscale or multi-spectral inputs are not.`,
    );
  }
  const [h, w] = layout === 'NCHW' ? [s[2], s[3]] : [s[1], s[2]];
  const fixed = [h, w].filter((d): d is number => typeof d === 'number' && d > 0);
  if (fixed.length === 2 && fixed[0] !== fixed[1]) {
    throw new QpError(
      'MODEL_UNSUPPORTED',
      `The model's input "${input.name}" is ${fixed[0]}×${fixed[1]} pixels; only square inputs (e.g. 224×224) are supported. Export the model with a square input size.`,
    );
  }
  // A fixed size in the graph wins over the option: the graph cannot run at any other.
  if (fixed.length > 0) return { layout, size: fixed[0] };
  if (inputSize !== undefined) return { layout, size: inputSize };
  throw new QpError(
    'MODEL_INPUT_SIZE_UNKNOWN',
    `The model's input "${input.name}" ${fmtShape(s)} does not fix its height and width, so the image size to feed is unknown. Tell us the input size the network was trained at (e.g. 224).`,
  );
}

/** Class count from a declared output shape [N, K] (or [N, K, 1, 1]); null when not a class vector. */
function classesFromShape(s: Dim[]): number | null | 'symbolic' {
  if (s.length < 2) return null;
  if (s.slice(2).some((d) => d !== 1)) return null;
  const k = s[1];
  if (typeof k === 'number') return k;
  return 'symbolic';
}

/** Class count from the weights of the last Gemm / MatMul feeding `name`, through pass-through ops. */
function classesFromWeights(g: Graph, name: string, producers: Map<string, Node>): number | null {
  let cur = name;
  for (let hops = 0; hops < 16; hops++) {
    const n = producers.get(cur);
    if (!n) return null;
    if (n.opType === 'Gemm' || n.opType === 'MatMul') {
      const w = g.initializers.get(n.inputs[1]);
      if (!w || w.dims.length !== 2) return null;
      const transB = n.opType === 'Gemm' && n.attrs.transB === 1;
      return transB ? w.dims[0] : w.dims[1];
    }
    if (n.opType === 'Add') {
      // MatMul + Add(bias): follow the non-initializer operand
      const next = n.inputs.find((i) => !g.initializers.has(i));
      if (!next) return null;
      cur = next;
      continue;
    }
    if (!PASS_THROUGH.has(n.opType)) return null;
    cur = n.inputs[0];
  }
  return null;
}

function pickOutput(g: Graph, producers: Map<string, Node>): { output: ValueInfo; classes: number } {
  if (g.outputs.length === 0) {
    throw new QpError(
      'MODEL_OUTPUT_NOT_CLASSES',
      'The model declares no outputs. Export it with its class scores [batch, classes] as the output.',
    );
  }
  const problems: string[] = [];
  for (const out of g.outputs) {
    const fromShape = out.shape ? classesFromShape(out.shape) : 'symbolic';
    let k: number | null = typeof fromShape === 'number' ? fromShape : null;
    if (fromShape === 'symbolic') k = classesFromWeights(g, out.name, producers);
    if (k !== null && k >= 2 && (out.dtype === 'float32' || out.dtype === 'other')) return { output: out, classes: k };
    problems.push(`"${out.name}" ${out.dtype} ${fmtShape(out.shape)}`);
  }
  const seg = g.outputs.some((o) => o.shape && o.shape.length === 4 && o.shape.slice(2).some((d) => d !== 1));
  throw new QpError(
    'MODEL_OUTPUT_NOT_CLASSES',
    `The model's output ${problems.join(', ')} is not a vector of class scores [batch, classes] with at least 2 classes` +
      (seg ? '; it looks like a segmentation or dense-prediction map' : '') +
      '. Only image classifiers are supported: load a model whose output is [batch, classes].',
  );
}

function endsWith(name: string, producers: Map<string, Node>, op: string): boolean {
  let cur = name;
  for (let hops = 0; hops < 8; hops++) {
    const n = producers.get(cur);
    if (!n) return false;
    if (n.opType === op) return true;
    if (!['Identity', 'Flatten', 'Reshape', 'Squeeze'].includes(n.opType)) return false;
    cur = n.inputs[0];
  }
  return false;
}
