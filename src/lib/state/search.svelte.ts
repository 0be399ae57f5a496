/**
 * "Smallest model within a top-1 budget" beside a result: asks the worker for the
 * accuracy-aware search from the result's config and, when asked, the size-versus-top-1
 * front (QuantApi.searchPrecision), keeps the last outcome with the result it was made for,
 * and turns it into what the view shows (pure helpers in search-view.ts: plan, ranking
 * rows, chart points with their share links). Worker answers are data here, never thrown.
 * Must not: import components or run anything itself (the worker does).
 */
import type { Remote } from 'comlink';
import { callback } from '../clients/quant.ts';
import type { ExperimentConfig } from '../config/types.ts';
import type { EnginePref, QuantApi } from '../protocol/api.ts';
import type { SearchOutcome, SearchProgress, SearchRequest } from '../protocol/search.ts';
import type { ErrorInfo } from '../util/errors.ts';
import { SEARCH_DEFAULTS } from './search-view.ts';

export type { SearchOutcome, SearchProgress } from '../protocol/search.ts';
export { FRONT_BITS } from '../search/pareto.ts';
export * from './search-view.ts';

export class SearchState {
  /** largest allowed top-1 drop, points */
  maxDrop = $state<number>(SEARCH_DEFAULTS.maxDrop);
  /** evaluation images that rank the layers */
  rankImages = $state<number>(SEARCH_DEFAULTS.rankImages);
  /** evaluation images the budget is checked on */
  checkImages = $state<number>(SEARCH_DEFAULTS.checkImages);
  /** re-quantize kept layers afterwards (one validation per kept layer) */
  prune = $state(false);
  /** also draw the size-versus-top-1 front */
  withFront = $state(false);
  frontBits = $state<number[]>([...SEARCH_DEFAULTS.frontBits]);
  running = $state(false);
  cancelling = $state(false);
  progress = $state.raw<SearchProgress | undefined>(undefined);
  error = $state.raw<ErrorInfo | undefined>(undefined);
  /** the last outcome, and the result (config hash) it was searched from */
  outcome = $state.raw<{ forHash: string; value: SearchOutcome } | undefined>(undefined);

  constructor(
    private readonly api: () => Remote<Pick<QuantApi, 'searchPrecision' | 'cancel'>>,
    private readonly engine: () => EnginePref,
  ) {}

  /** What the inputs ask the worker for. */
  get request(): SearchRequest {
    return {
      maxDrop: this.maxDrop,
      rankImages: Math.max(1, Math.round(this.rankImages)),
      checkImages: Math.max(1, Math.round(this.checkImages)),
      prune: this.prune,
      paretoBits: this.withFront ? [...this.frontBits].sort((a, b) => a - b) : undefined,
      paretoPoints: this.withFront ? SEARCH_DEFAULTS.frontPoints : undefined,
    };
  }

  /** The outcome searched from the result `hash`, if it is the last one. */
  of(hash: string): SearchOutcome | undefined {
    return this.outcome?.forHash === hash ? this.outcome.value : undefined;
  }

  /** Runs the search from a result's config (its model and images must be loaded). */
  async run(config: ExperimentConfig, forHash: string): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.cancelling = false;
    this.error = undefined;
    this.progress = { done: 0, total: 0, message: 'Starting' };
    try {
      const r = await this.api().searchPrecision(
        config,
        this.engine(),
        this.request,
        callback((p: SearchProgress) => {
          this.progress = p;
        }),
      );
      if (!r.ok) {
        this.error = r.error;
        return;
      }
      this.outcome = { forHash, value: r.value };
    } finally {
      this.running = false;
      this.cancelling = false;
      this.progress = undefined;
    }
  }

  cancel(): void {
    if (!this.running || this.cancelling) return;
    this.cancelling = true;
    void this.api().cancel();
  }
}
