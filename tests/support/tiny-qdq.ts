/**
 * The tiny classifier (tiny-model.ts) and its QDQ form as onnxruntime's quantizer writes it
 * (imported-fixtures.ts ortStyleQdq), with fixed activation ranges: the quantized file and
 * float parent the app tests open. Not a test file itself.
 */
import { parseModel, serializeModel } from '../../src/lib/onnx/model.ts';
import { ortStyleQdq, type Ranges } from './imported-fixtures.ts';
import { tinyClassifier } from './tiny-model.ts';

/** a range for every tensor of the tiny classifier (roughly what a calibration gives) */
export const TINY_RANGES: Ranges = new Map([
  ['input', { min: -2.2, max: 2.7 }],
  ['c', { min: 0, max: 6 }],
  ['r', { min: 0, max: 6 }],
  ['p', { min: 0, max: 3 }],
  ['f', { min: 0, max: 3 }],
  ['logits', { min: -30, max: 30 }],
]);

/** the float parent and its QDQ form, as file bytes */
export function tinyQdqPair(seed = 12345): { parent: Uint8Array; qdq: Uint8Array } {
  const parent = tinyClassifier(seed);
  return { parent, qdq: serializeModel(ortStyleQdq(parseModel(parent), TINY_RANGES)) };
}
