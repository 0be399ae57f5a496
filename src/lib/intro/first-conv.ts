/**
 * The tensor the introduction's widget quantizes: the weights of the model's first
 * convolution, with BatchNorm folded in as the pipeline quantizes them. Kept out of the
 * worker so it is testable and the worker API only forwards it.
 */
import { QpError } from '../util/errors.ts';
import { foldBatchNorm } from '../onnx/fold-bn.ts';
import { topoSort } from '../onnx/ir.ts';
import { parseModel } from '../onnx/model.ts';

export type { TensorSample } from '../protocol/api.ts';
import type { TensorSample } from '../protocol/api.ts';

export function firstConvWeights(modelBytes: Uint8Array): TensorSample {
  const graph = foldBatchNorm(parseModel(modelBytes)).graph;
  for (const node of topoSort(graph)) {
    if (node.opType !== 'Conv') continue;
    const w = graph.initializers.get(node.inputs[1]);
    if (!w || w.dtype !== 'float32') continue;
    return {
      layer: node.name || node.outputs[0],
      name: w.name,
      dims: [...w.dims],
      values: Float32Array.from(w.data as Float32Array),
    };
  }
  throw new QpError(
    'MODEL_UNSUPPORTED',
    'The model has no convolution with float32 weights stored in the file, so the introduction has no tensor to show. Load a CNN such as MobileNet-V2.',
  );
}
