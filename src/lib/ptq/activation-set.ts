/**
 * One tensor's values for every calibration image, kept between the passes of a
 * block-wise reconstruction: stored in the chunks the engine produced them in (a few
 * images each, so no single huge allocation), read back either chunk by chunk (full
 * passes) or as a gathered mini-batch of arbitrary images (training steps). No engine.
 */
import type { FloatTensor } from '../engine/types.ts';

export class ActivationSet {
  /** values per image */
  readonly perImage: number;
  private readonly chunks: Float32Array[] = [];
  private readonly chunkImages: number[] = [];
  private starts: number[] = [];
  count = 0;

  /** `dims`: one image's dims (no batch axis) */
  constructor(readonly dims: readonly number[]) {
    this.perImage = dims.reduce((a, b) => a * b, 1);
  }

  /** Appends a batch (its first axis the images); the data is kept, not copied. */
  push(t: FloatTensor): void {
    const n = t.dims[0];
    if (t.data.length !== n * this.perImage)
      throw new Error(`A batch of ${t.data.length} values does not hold ${n} images of ${this.perImage}.`);
    this.starts.push(this.count);
    this.chunks.push(t.data);
    this.chunkImages.push(n);
    this.count += n;
  }

  /** The stored batches, as pushed. */
  *batches(): Generator<FloatTensor> {
    for (let k = 0; k < this.chunks.length; k++)
      yield { data: this.chunks[k], dims: [this.chunkImages[k], ...this.dims] };
  }

  /** Copies image `i` into `out` at `offset`. */
  copyImage(i: number, out: Float32Array, offset: number): void {
    let k = this.starts.length - 1;
    // chunks are few (tens): a linear search from the end beats bookkeeping
    while (k > 0 && this.starts[k] > i) k--;
    const from = (i - this.starts[k]) * this.perImage;
    out.set(this.chunks[k].subarray(from, from + this.perImage), offset);
  }

  /** The images `indices` as one batch. */
  gather(indices: readonly number[], out = new Float32Array(indices.length * this.perImage)): FloatTensor {
    indices.forEach((i, j) => this.copyImage(i, out, j * this.perImage));
    return { data: out, dims: [indices.length, ...this.dims] };
  }

  /** Σ x² over every stored value (the energy errors are compared with). */
  energy(): number {
    let s = 0;
    for (const c of this.chunks) for (let i = 0; i < c.length; i++) s += c[i] * c[i];
    return s;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.count * this.perImage * 4;
  }
}
