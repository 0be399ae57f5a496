/**
 * Why Run is off, as one short sentence for the Run panel and the run bar — including the
 * moment after a cancel that had to end the worker, when the model comes back by itself
 * ("Reloading the model…", not "Choose a model first."). Pure over the app's state.
 */
import type { AppState } from './app.svelte.ts';

export function runBlocker(app: AppState): string | undefined {
  if (app.runnable || app.runner.running) return undefined;
  if (app.reloading) return 'Reloading the model after the cancel…';
  if (app.model.state === 'loading') return 'Loading the model…';
  if (app.model.state !== 'ready') return 'Choose a model first.';
  if (app.data.state === 'loading') return 'Loading the images…';
  if (app.data.state !== 'ready') return 'Choose images first.';
  if (app.model.value?.quantized)
    return 'This model is already quantized: evaluate it as it is, or open its float parent (Weights & graph).';
  if (app.imported.busy !== 'idle') return 'Wait for the quantized model’s evaluation to finish, or cancel it.';
  if (app.search.running) return 'Wait for the search under the result to finish, or cancel it.';
  if (app.exp.invalid) return 'Fix the settings marked in red first.';
  return undefined;
}
