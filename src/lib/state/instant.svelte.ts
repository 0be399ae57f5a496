/**
 * State of the views that need no Run: the weight view (recomputed in the worker on every
 * weight-side change), the background accuracy estimate (debounced; a newer change
 * replaces an older estimate), the model's layer graph and the readable layer names every
 * view shows. Rune class; AppState owns one and calls `changed()` from an effect.
 * Must not: import components or compute anything itself (the worker does).
 */
import type { Remote } from 'comlink';
import type { ErrorInfo, Result } from '../util/errors.ts';
import type { EnginePref, QuantApi } from '../protocol/api.ts';
import type { ExperimentConfig } from '../config/types.ts';
import { ESTIMATE_IMAGES, type AccuracyEstimate, type LayerGraphView, type WeightView } from '../protocol/instant.ts';
import type { ExperimentResult } from '../protocol/results.ts';

type InstantApi = Pick<
  QuantApi,
  'weightView' | 'layerGraph' | 'estimate' | 'cancelEstimate' | 'prepareEstimate' | 'getRun'
>;

export type EstimateState = 'off' | 'waiting' | 'running' | 'ready' | 'error';

/** Milliseconds a change must rest before the estimate starts. */
export const ESTIMATE_DEBOUNCE_MS = 600;

export class InstantState {
  weight = $state.raw<WeightView | undefined>(undefined);
  weightError = $state<ErrorInfo | undefined>(undefined);
  /** ms from the change to the weight view's arrival (worker time + transfer) */
  weightMs = $state<number | undefined>(undefined);
  /** count of weight views received (tests and the benchmark wait on it) */
  weightVersion = $state(0);

  graph = $state.raw<LayerGraphView | undefined>(undefined);
  /** layer key → readable label, from the graph */
  // raw state replaced whole, never mutated in place
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  labels = $state.raw<Map<string, { label: string; onnx: string }>>(new Map());

  /** run the background estimate after each change */
  estimateOn = $state(true);
  estimateImages = $state(ESTIMATE_IMAGES);
  estimate = $state.raw<AccuracyEstimate | undefined>(undefined);
  estimateState = $state<EstimateState>('off');
  estimateError = $state<ErrorInfo | undefined>(undefined);
  /** ms from the change to the estimate (debounce included) */
  estimateMs = $state<number | undefined>(undefined);

  /** the two stored runs overlaid (full records, with their per-layer rows) */
  overlay = $state.raw<ExperimentResult[]>([]);
  private overlayFor = '';

  private weightToken = 0;
  private estimateToken = 0;
  /** config hash and image count the shown estimate was asked for */
  private estimatedFor = '';
  private timer: ReturnType<typeof setTimeout> | undefined;
  private graphFor: string | undefined;

  constructor(private readonly api: () => Remote<InstantApi> | InstantApi) {}

  /** "block 16 · project 1×1 (Conv_94)" for a layer key; the key itself when unknown. */
  nameOf(key: string): string {
    const n = this.labels.get(key);
    if (!n) return key;
    return n.onnx && n.onnx !== n.label ? `${n.label} (${n.onnx})` : n.label;
  }

  /** Short label alone ("block 16 · project 1×1"), for tight places. */
  shortName(key: string): string {
    return this.labels.get(key)?.label ?? key;
  }

  /** The model changed: fetch its layer graph and names (once per model id and fold setting). */
  async loadGraph(modelId: string, foldBn: boolean): Promise<void> {
    const key = `${modelId}|${foldBn}`;
    if (this.graphFor === key) return;
    this.graphFor = key;
    const r = await this.api().layerGraph(foldBn);
    if (this.graphFor !== key) return;
    if (r.ok) {
      this.graph = r.value;
      // eslint-disable-next-line svelte/prefer-svelte-reactivity -- raw state replaced whole
      this.labels = new Map(
        r.value.nodes.filter((n) => n.kind === 'layer').map((n) => [n.id, { label: n.label, onnx: n.onnx }]),
      );
    }
  }

  /** Recompute the weight view for `config` (and the selected layer's histogram). */
  async refreshWeights(config: ExperimentConfig, layer: string | undefined): Promise<void> {
    const t = ++this.weightToken;
    const t0 = performance.now();
    let r: Result<WeightView> = await this.api().weightView(config, { layer, bins: 96 });
    // a layer of another model (or fold setting) may still be selected: show the rest
    if (!r.ok && layer && r.error.code === 'ARG_INVALID') r = await this.api().weightView(config, { bins: 96 });
    if (t !== this.weightToken) return;
    if (r.ok) {
      this.weight = r.value;
      this.weightError = undefined;
      this.weightMs = performance.now() - t0;
      this.weightVersion++;
    } else {
      this.weightError = r.error;
    }
  }

  /**
   * Any change (of the settings or of the estimate's image count): schedule the estimate
   * (debounced); a pending or running older one is dropped.
   */
  scheduleEstimate(config: ExperimentConfig, engine: EnginePref, configHash: string | undefined): void {
    clearTimeout(this.timer);
    const t = ++this.estimateToken;
    // the running estimate is for older settings: stop it now, so the worker is free
    if (this.estimateState === 'running') void this.api().cancelEstimate();
    if (!this.estimateOn) {
      this.estimateState = 'off';
      return;
    }
    const t0 = performance.now();
    // the shown estimate answers these settings and this image count already
    if (
      configHash &&
      this.estimate?.configHash === configHash &&
      this.estimatedFor === `${configHash}|${this.estimateImages}`
    ) {
      this.estimateState = 'ready';
      return;
    }
    this.estimateState = 'waiting';
    // the worker quantizes the weights while the change settles
    void this.api().prepareEstimate(config, { images: this.estimateImages });
    this.timer = setTimeout(() => void this.runEstimate(t, config, engine, t0), ESTIMATE_DEBOUNCE_MS);
  }

  private async runEstimate(t: number, config: ExperimentConfig, engine: EnginePref, t0: number): Promise<void> {
    if (t !== this.estimateToken) return;
    this.estimateState = 'running';
    const images = this.estimateImages;
    const r = await this.api().estimate(config, engine, { images });
    if (t !== this.estimateToken) return; // a newer change came; its estimate replaces this one
    if (r.ok) {
      this.estimate = r.value;
      this.estimatedFor = `${r.value.configHash}|${images}`;
      this.estimateError = undefined;
      this.estimateMs = performance.now() - t0;
      this.estimateState = 'ready';
    } else if (r.error.code === 'CANCELLED') {
      this.estimateState = 'waiting';
    } else {
      this.estimateError = r.error;
      this.estimateState = 'error';
    }
  }

  /** Read the two runs ticked for comparison in full (the history list leaves out per-layer rows). */
  async loadOverlay(hashes: string[]): Promise<void> {
    const key = hashes.join(',');
    if (key === this.overlayFor) return;
    this.overlayFor = key;
    const runs: ExperimentResult[] = [];
    for (const h of hashes) {
      const r = await this.api().getRun(h);
      if (r.ok && r.value) runs.push(r.value);
    }
    if (this.overlayFor === key) this.overlay = runs;
  }

  /** Stop estimating (e.g. a full Run starts): the worker's estimate is cancelled. */
  async stopEstimate(): Promise<void> {
    clearTimeout(this.timer);
    this.estimateToken++;
    if (this.estimateState === 'running' || this.estimateState === 'waiting')
      this.estimateState = this.estimate ? 'ready' : 'off';
    await this.api().cancelEstimate();
  }
}
