/**
 * Adam (Kingma & Ba 2015) as torch.optim.Adam computes it, over one flat parameter array,
 * with the step size given per step (so a schedule such as the cosine annealing MQBench
 * uses for activation step sizes is the caller's). Pure math.
 */
export class Adam {
  private readonly m: Float64Array;
  private readonly s: Float64Array;
  private t = 0;

  constructor(
    readonly size: number,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly eps = 1e-8,
  ) {
    this.m = new Float64Array(size);
    this.s = new Float64Array(size);
  }

  /** One step on `params` (in place) along the gradient `grad` with step size `lr`. */
  step(params: Float32Array | Float64Array, grad: ArrayLike<number>, lr: number): void {
    this.t++;
    const c1 = 1 - Math.pow(this.beta1, this.t);
    const c2 = 1 - Math.pow(this.beta2, this.t);
    const { m, s, beta1, beta2, eps } = this;
    for (let i = 0; i < this.size; i++) {
      const g = grad[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      s[i] = beta2 * s[i] + (1 - beta2) * g * g;
      params[i] -= (lr * (m[i] / c1)) / (Math.sqrt(s[i] / c2) + eps);
    }
  }
}

/** Cosine annealing from `lr` at step 0 to 0 at step `total` (torch's CosineAnnealingLR, eta_min 0). */
export function cosineLr(lr: number, step: number, total: number): number {
  return (lr * (1 + Math.cos((Math.PI * Math.min(step, total)) / Math.max(1, total)))) / 2;
}
