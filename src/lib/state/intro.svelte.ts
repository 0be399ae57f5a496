/**
 * The introduction widget's tensor: the loaded model's first convolution weights, fetched
 * once per model from the worker. Rune class; the quantization math is in
 * src/lib/intro/quant-widget.ts.
 */
import type { TensorSample } from '../intro/first-conv.ts';
import type { ErrorInfo } from '../util/errors.ts';
import { quantClient } from '../clients/quant.ts';

export class IntroState {
  tensor = $state.raw<TensorSample | undefined>(undefined);
  error = $state.raw<ErrorInfo | undefined>(undefined);
  private loadedFor: string | undefined;

  /** Fetches the tensor of the model with this id (no-op when already loaded). */
  async load(modelId: string): Promise<void> {
    if (this.loadedFor === modelId) return;
    this.loadedFor = modelId;
    const r = await quantClient().firstConvWeights();
    if (this.loadedFor !== modelId) return;
    if (r.ok) {
      this.tensor = r.value;
      this.error = undefined;
    } else {
      this.tensor = undefined;
      this.error = r.error;
    }
  }
}
