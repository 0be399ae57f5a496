/**
 * One thing the app loads — the model or the images — as a rune class: its loading state,
 * the loaded value, the error that stopped it, where it came from (as a link names it) and,
 * when an opened link names a local file or folder, what the user is asked to open.
 * AppState holds one slot per input, so both go through the same transitions.
 */
import type { ErrorInfo } from '../util/errors.ts';

export type LoadState = 'empty' | 'loading' | 'ready' | 'error';

export class LoadSlot<T, Ref, Ask> {
  state = $state<LoadState>('empty');
  value = $state<T | undefined>(undefined);
  error = $state<ErrorInfo | undefined>(undefined);
  /** where the loaded value came from, as a link names it */
  ref = $state<Ref | undefined>(undefined);
  /** the link names a local file or folder: the user is asked for it */
  ask = $state<Ask | undefined>(undefined);

  get ready(): boolean {
    return this.state === 'ready';
  }

  begin(): void {
    this.state = 'loading';
    this.error = undefined;
  }

  succeed(value: T, ref: Ref | undefined): void {
    this.value = value;
    this.ref = ref;
    this.state = 'ready';
    this.ask = undefined;
  }

  /**
   * Loading failed. What was loaded before stays shown (the worker keeps it too) unless
   * `drop`: then it was replaced and is not the one wanted.
   */
  fail(error: ErrorInfo, drop = false): void {
    if (drop) this.value = undefined;
    this.state = 'error';
    this.error = error;
  }

  /** The worker lost what was loaded (it crashed or was stopped). */
  drop(): void {
    this.value = undefined;
    this.state = 'empty';
  }

  /** Clear an error the user has moved past. */
  clearError(): void {
    this.error = undefined;
    if (this.state === 'error') this.state = 'empty';
  }
}
