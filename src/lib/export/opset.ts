/**
 * Raising a model's default-domain opset to what the QDQ export needs (13 for per-axis
 * QuantizeLinear/DequantizeLinear, 21 for int4/int16), rewriting the ops whose signature
 * changed on the way (attributes that became inputs). Ops not known to keep their meaning
 * are refused rather than guessed. Edits the graph in place (call it on a copy).
 */
import { QpError } from '../util/errors.ts';
import { type Graph, NameAllocator, makeTensor, shapeOf } from '../onnx/ir.ts';
import { ensureOpset } from '../onnx/fake-quant.ts';

/** Default-domain ops whose meaning and signature stay the same from opset 11 to 21. */
const STABLE = new Set([
  'Conv',
  'ConvTranspose',
  'Relu',
  'LeakyRelu',
  'PRelu',
  'Sigmoid',
  'HardSigmoid',
  'HardSwish',
  'Tanh',
  'Elu',
  'Selu',
  'Softplus',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Sum',
  'Max',
  'Min',
  'Mean',
  'Exp',
  'Log',
  'Sqrt',
  'Neg',
  'Abs',
  'Pow',
  'Reciprocal',
  'Floor',
  'Ceil',
  'Round',
  'Erf',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'GlobalMaxPool',
  'LRN',
  'BatchNormalization',
  'InstanceNormalization',
  'Flatten',
  'Reshape',
  'Transpose',
  'Concat',
  'Gemm',
  'MatMul',
  'Identity',
  'Gather',
  'Constant',
  'Cast',
  'Tile',
  'Expand',
  'Where',
  'Equal',
  'Greater',
  'Less',
  'Not',
  'And',
  'Or',
  'Shape',
  'Size',
  'ArgMax',
  'ArgMin',
  'Clip',
  'Pad',
  'ConstantOfShape',
  'Slice',
  'DepthToSpace',
  'SpaceToDepth',
  'Resize',
  'Range',
  'QuantizeLinear',
  'DequantizeLinear',
]);
/** ops whose `axes` attribute became an input: ReduceSum/Squeeze/Unsqueeze at 13, the other reductions at 18 */
const AXES_AT_13 = new Set(['Squeeze', 'Unsqueeze', 'ReduceSum']);
const AXES_AT_18 = new Set([
  'ReduceMean',
  'ReduceMax',
  'ReduceMin',
  'ReduceProd',
  'ReduceSumSquare',
  'ReduceL1',
  'ReduceL2',
  'ReduceLogSum',
  'ReduceLogSumExp',
]);
const SOFTMAX = new Set(['Softmax', 'LogSoftmax', 'Hardmax']);

/**
 * Raise `g` (opset ≥ 7) to opset `target` (≤ 21). Throws QpError EXPORT_UNSUPPORTED naming
 * the ops that cannot be carried over.
 */
export function raiseOpset(g: Graph, target: number): void {
  if (g.opset >= target) return;
  ensureOpset(g, 11);
  const from = g.opset;
  const bad = new Set<string>();
  for (const n of g.nodes) {
    if (n.domain !== '' && n.domain !== 'ai.onnx') continue;
    const op = n.opType;
    if (STABLE.has(op) || AXES_AT_13.has(op) || AXES_AT_18.has(op) || op === 'Split' || op === 'Dropout') continue;
    if (SOFTMAX.has(op)) {
      // before 13 Softmax flattens to 2-D at `axis`; the same as 13's per-axis Softmax only on the last axis
      const rank = shapeOf(g, n.inputs[0])?.length;
      const axis = typeof n.attrs.axis === 'number' ? n.attrs.axis : 1;
      if (from >= 13 || (rank !== undefined && (axis === rank - 1 || axis === -1))) continue;
    }
    bad.add(op);
  }
  if (bad.size) {
    throw new QpError(
      'EXPORT_UNSUPPORTED',
      `The QDQ model needs opset ${target}, but the model is at opset ${from} and uses ${[...bad].sort().join(', ')}, whose meaning changed in between. Export the model with opset ${target} or newer and run it again.`,
    );
  }
  const names = new NameAllocator(g);
  const toInput = (n: Graph['nodes'][number], attr: string, pos: number) => {
    const v = n.attrs[attr];
    if (!Array.isArray(v)) return;
    const t = names.take(`${n.name || n.opType}_${attr}`);
    g.initializers.set(t, makeTensor(t, [v.length], (v as number[]).map(BigInt), 'int64'));
    // Stryker disable next-line ConditionalExpression,EqualityOperator,StringLiteral: every node moved here has its data input, so inputs.length ≥ pos = 1 and nothing is padded
    while (n.inputs.length < pos) n.inputs.push('');
    n.inputs[pos] = t;
    delete n.attrs[attr];
    if (n.attrTypes) delete n.attrTypes[attr];
  };
  for (const n of g.nodes) {
    if (n.domain !== '' && n.domain !== 'ai.onnx') continue;
    // The `from <` tests below only skip work: a valid model at or past that opset has no such
    // attribute left, and toInput does nothing without one (Stryker's survivors there are equivalent).
    if (AXES_AT_13.has(n.opType)) {
      // Stryker disable next-line ConditionalExpression,EqualityOperator: see above
      if (from < 13) toInput(n, 'axes', 1);
    } else if (AXES_AT_18.has(n.opType)) {
      if (target < 18) continue;
      // Stryker disable next-line ConditionalExpression,EqualityOperator: see above
      if (from < 18) toInput(n, 'axes', 1);
    } else if (n.opType === 'Split') {
      // Stryker disable next-line ConditionalExpression,EqualityOperator: see above
      if (from < 13) toInput(n, 'split', 1);
      if (target >= 18 && !n.inputs[1]) {
        n.attrs.num_outputs = n.outputs.length;
        if (n.attrTypes) n.attrTypes.num_outputs = 'int';
      }
    } else if (n.opType === 'Dropout') {
      // inference: Dropout is the identity; its signature changed at 12
      n.opType = 'Identity';
      n.inputs = [n.inputs[0]];
      n.outputs = n.outputs.slice(0, 1);
      n.attrs = {};
      // Stryker disable next-line ConditionalExpression: without attrTypes, none and {} say the same
      if (n.attrTypes) n.attrTypes = {};
    }
  }
  g.opset = target;
}
