/**
 * QDrop's random masks: per element, keep the quantized activation with probability
 * `keep` (1) or the float one (0). Drawn from a seeded 32-bit generator (mulberry32's
 * integer core), two elements per draw at 16-bit resolution (32 per draw at QDrop's default
 * of one half, one bit each), so a reconstruction run is reproducible from its seed and the
 * masks of a block (millions of elements per step) cost little next to the step. Pure math.
 */

/** A seeded generator of uint32 values and of masks. */
export class MaskRng {
  private a: number;
  constructor(seed: number) {
    this.a = seed >>> 0;
  }

  /** The next uint32. */
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor((this.next() / 4294967296) * n);
  }

  /**
   * Fills `out` with 1 (keep the quantized value) with probability `keep`, else 0; `keep`
   * is resolved to a multiple of 1/65536 (exact for 0, ½ and 1).
   */
  fillMask(out: Float32Array, keep: number): void {
    const threshold = Math.round(Math.min(1, Math.max(0, keep)) * 65536);
    if (threshold >= 65536) {
      out.fill(1);
      return;
    }
    if (threshold <= 0) {
      out.fill(0);
      return;
    }
    const n = out.length;
    let i = 0;
    if (threshold === 32768) {
      // one half: each bit of a draw is a fair coin, 32 elements per draw
      for (; i + 32 <= n; i += 32) {
        const r = this.next();
        for (let k = 0; k < 32; k++) out[i + k] = (r >>> k) & 1;
      }
      for (; i < n; i++) out[i] = this.next() & 1;
      return;
    }
    for (; i + 1 < n; i += 2) {
      const r = this.next();
      out[i] = (r & 0xffff) < threshold ? 1 : 0;
      out[i + 1] = r >>> 16 < threshold ? 1 : 0;
    }
    if (i < n) out[i] = (this.next() & 0xffff) < threshold ? 1 : 0;
  }
}
