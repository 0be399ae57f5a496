/**
 * State of the "Why accuracy drops" views: which metric and order the per-layer chart
 * shows, the selected layer, and that layer's histogram data fetched from the worker
 * (kept there for the last analysed run only; a stored result from an earlier visit has
 * its per-layer rows but no histograms). Rune class. Must not: import components.
 */
import type { ErrorInfo, Result } from '../util/errors.ts';
import type { LayerDetailView } from '../protocol/api.ts';
import type { ExperimentResult } from '../experiment/types.ts';
import type { LayerAnalysis } from '../analysis/types.ts';
import { orderLayers, type LayerOrder, type MetricKey } from './analysis-view.ts';

export type DetailState = 'empty' | 'loading' | 'ready' | 'unavailable' | 'error';

export interface DetailSource {
  layerDetail(
    configHash: string,
    layer: string,
    opts?: { bins?: number; sampleImages?: number },
  ): Promise<Result<LayerDetailView>>;
}

export class AnalysisState {
  metric = $state<MetricKey>('standaloneSqnr');
  order = $state<LayerOrder>('network');
  /** heatmap: sort each layer's channels by their shift */
  sortChannels = $state(false);
  /** heatmap colour limit for Δμ/σ; 0 = automatic (98th percentile, rounded up) */
  driftLimit = $state(0);
  /** per-channel ranges: symmetric log scale */
  logRanges = $state(true);

  selected = $state<string | undefined>(undefined);
  /** readable name of a layer key ("block 16 · project 1×1 (Conv_94)"); AppState sets it */
  nameOf: (key: string) => string = (key) => key;
  detail = $state.raw<LayerDetailView | undefined>(undefined);
  detailState = $state<DetailState>('empty');
  detailError = $state<ErrorInfo | undefined>(undefined);

  /** configHash the selection belongs to */
  private forHash: string | undefined;
  // a memo, not state: nothing renders from it
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private cache = new Map<string, LayerDetailView>();
  private token = 0;

  constructor(
    private readonly result: () => ExperimentResult | undefined,
    private readonly source: () => DetailSource,
  ) {}

  /** Per-layer rows of the shown result (undefined when it was not analysed). */
  get layers(): LayerAnalysis[] | undefined {
    return this.result()?.layers;
  }

  get ordered(): LayerAnalysis[] {
    return this.layers ? orderLayers(this.layers, this.metric, this.order) : [];
  }

  get selectedLayer(): LayerAnalysis | undefined {
    return this.layers?.find((l) => l.name === this.selected);
  }

  /** Forget the selection when the shown result changes (call from an effect). */
  sync(hash: string | undefined): void {
    if (hash === this.forHash) return;
    this.forHash = hash;
    this.cache.clear();
    this.token++;
    this.selected = undefined;
    this.detail = undefined;
    this.detailState = 'empty';
    this.detailError = undefined;
  }

  /** Select a layer and fetch its histograms (cached per result). */
  async select(name: string | undefined): Promise<void> {
    const r = this.result();
    this.selected = name;
    this.detailError = undefined;
    if (!name || !r?.layers) {
      this.detail = undefined;
      this.detailState = 'empty';
      return;
    }
    this.sync(r.configHash);
    this.selected = name;
    const hit = this.cache.get(name);
    if (hit) {
      this.detail = hit;
      this.detailState = 'ready';
      return;
    }
    const t = ++this.token;
    this.detailState = 'loading';
    const res = await this.source().layerDetail(r.configHash, name, { bins: 96 });
    if (t !== this.token) return; // another selection came meanwhile
    if (res.ok) {
      this.cache.set(name, res.value);
      this.detail = res.value;
      this.detailState = 'ready';
    } else {
      this.detail = undefined;
      this.detailError = res.error;
      this.detailState = res.error.code === 'ARG_INVALID' ? 'unavailable' : 'error';
    }
  }
}
