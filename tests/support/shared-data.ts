/**
 * Shared set-up for integration tests on the real data in ../shared/data (read in
 * place, never copied). Tests skip with a message when the folder is absent.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const SHARED_DATA = resolve(import.meta.dirname, '../../../shared/data');
export const SAMPLE_DIR = resolve(SHARED_DATA, 'imagenet-sample');
export const CLASS_INDEX = resolve(SHARED_DATA, 'imagenet_class_index.json');
export const MOBILENET_V2 = resolve(SHARED_DATA, 'models/mobilenetv2-7-fp32.onnx');
export const HAVE_SHARED_DATA = existsSync(SAMPLE_DIR) && existsSync(MOBILENET_V2) && existsSync(CLASS_INDEX);

if (!HAVE_SHARED_DATA) {
  console.warn(
    `[skip] ${SHARED_DATA} is absent: integration tests on the real MobileNet-V2 and ImageNet sample are skipped.`,
  );
}

export function readModel(path = MOBILENET_V2): Uint8Array {
  return new Uint8Array(readFileSync(path));
}
