/**
 * Turning cached uint8 crops into normalized float batches for the engine. Crops are
 * kept as uint8 (150 KB per image instead of 602 KB as float32) and normalized on the
 * fly, one batch at a time, into a reused buffer.
 */
import { cropsToTensor } from '../data/preprocess.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { FloatTensor } from '../engine/types.ts';

export interface Batch {
  /** positions (into the list given to `batches`) of the images in this batch */
  rows: number[];
  tensor: FloatTensor;
}

/**
 * Yields batches of at most `size` images. Each batch gets its own Float32Array:
 * ORT may keep a reference to an input until the run resolves.
 */
export function* batches(crops: Uint8Array[], spec: PreprocessSpec, size: number): Generator<Batch> {
  for (let start = 0; start < crops.length; start += size) {
    const part = crops.slice(start, start + size);
    const data = cropsToTensor(part, spec);
    const n = part.length;
    const dims = spec.layout === 'NCHW' ? [n, 3, spec.crop, spec.crop] : [n, spec.crop, spec.crop, 3];
    yield { rows: part.map((_, i) => start + i), tensor: { data, dims } };
  }
}

/** Estimates seconds left from the rate so far. */
export class Eta {
  private readonly t0 = performance.now();
  estimate(done: number, total: number): number | undefined {
    if (done <= 0) return undefined;
    const elapsed = (performance.now() - this.t0) / 1000;
    return (elapsed / done) * (total - done);
  }
}
