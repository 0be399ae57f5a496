/**
 * What the calibration scripts measure on: the real MobileNet-V2 of ../shared/data
 * (QP_SHARED_DATA overrides the folder) with its BatchNorms folded, the first `images`
 * images of the ImageNet sample prepared as crops, and the tensors of every activation
 * quantization point (all placement rules on).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { prepareCrops } from '../src/lib/data/crops.ts';
import { DiskCropStore, loadImageFolder } from '../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../src/lib/data/preprocess.ts';
import { foldBatchNorm } from '../src/lib/onnx/fold-bn.ts';
import type { Graph } from '../src/lib/onnx/ir.ts';
import { parseModel } from '../src/lib/onnx/model.ts';
import { findQuantPoints, ALL_PLACEMENT } from '../src/lib/onnx/placement.ts';

export const SHARED = resolve(process.env.QP_SHARED_DATA ?? resolve(import.meta.dirname, '../../shared/data'));

export async function mobileNetV2Sample(
  images: number,
): Promise<{ graph: Graph; crops: Uint8Array[]; tensors: string[] }> {
  const dataset = await loadImageFolder(resolve(SHARED, 'imagenet-sample'));
  const { crops } = await prepareCrops(dataset.items.slice(0, images), TORCHVISION_SPEC, new DiskCropStore(), {});
  const graph = foldBatchNorm(
    parseModel(new Uint8Array(readFileSync(resolve(SHARED, 'models/mobilenetv2-7-fp32.onnx')))),
  ).graph;
  const points = findQuantPoints(graph, ALL_PLACEMENT);
  return {
    graph,
    crops: crops.filter((c): c is Uint8Array => !!c),
    tensors: points.activations.map((p) => p.tensor),
  };
}
