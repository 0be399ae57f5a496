/**
 * Application state as rune classes: environment, model, data source, the run in
 * progress, the stored result of the current config, history and cache. Talks to the
 * worker through the typed client; every worker answer is a Result, shown as data.
 * Must not: import components or do pipeline work.
 */
import { toErrorInfo, type ErrorInfo, type Result } from '../protocol/errors.ts';
import { readModelFile } from '../data/read-model.ts';
import type {
  CacheEstimate,
  DataSource,
  DatasetInfo,
  DownloadProgress,
  EnginePref,
  EnvInfo,
  LoadedModel,
  ModelSource,
  QuantApi,
  RunOutcome,
} from '../protocol/api.ts';
import type { Remote } from 'comlink';
import type { ExperimentResult, Progress } from '../experiment/types.ts';
import { callback, moveBytes, onWorkerCrash, quantClient } from '../clients/quant.ts';
import { ExperimentState } from './experiment.svelte.ts';
import { AnalysisState } from './analysis.svelte.ts';
import { InstantState } from './instant.svelte.ts';
import { getModelEntry } from '../models/registry.ts';

export type LoadState = 'empty' | 'loading' | 'ready' | 'error';
export type RunState = 'idle' | 'loading' | 'running' | 'done' | 'error' | 'cancelled';

export interface SharedModelFile {
  name: string;
  size: number;
  url: string;
}

/** seconds → "1 min 5 s" */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '–';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function formatBytes(n: number): string {
  if (n < 1e3) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

export class AppState {
  readonly exp: ExperimentState;
  readonly analysis: AnalysisState;
  /** views that need no Run: weight view, background estimate, layer graph and names */
  readonly instant: InstantState;
  env = $state<EnvInfo | undefined>(undefined);
  enginePref = $state<EnginePref>('auto');

  modelState = $state<LoadState>('empty');
  model = $state<LoadedModel | undefined>(undefined);
  modelError = $state<ErrorInfo | undefined>(undefined);
  download = $state<DownloadProgress | undefined>(undefined);
  sharedModels = $state<SharedModelFile[]>([]);
  cachedModels = $state<{ sha256: string; name: string; size: number }[]>([]);

  dataState = $state<LoadState>('empty');
  dataset = $state<DatasetInfo | undefined>(undefined);
  dataError = $state<ErrorInfo | undefined>(undefined);

  /** run option (not part of the config): also analyse why accuracy drops */
  analyze = $state(false);
  /** evaluation images the per-layer analysis uses (the first ones of the evaluation split) */
  analysisImages = $state(64);
  /** the run in progress was asked to analyse */
  analyzing = $state(false);

  runState = $state<RunState>('idle');
  progress = $state<Progress | undefined>(undefined);
  runError = $state<ErrorInfo | undefined>(undefined);
  outcome = $state.raw<Omit<RunOutcome, 'results'> | undefined>(undefined);
  /** result shown: the current config's stored result or the run just finished */
  result = $state.raw<ExperimentResult | undefined>(undefined);
  resultSource = $state<'none' | 'stored' | 'fresh'>('none');

  history = $state.raw<ExperimentResult[]>([]);
  compare = $state<string[]>([]);
  cache = $state.raw<CacheEstimate | undefined>(undefined);
  storageError = $state<ErrorInfo | undefined>(undefined);

  get runnable(): boolean {
    return this.modelState === 'ready' && this.dataState === 'ready' && this.runState !== 'running' && !this.exp.invalid;
  }

  /** `client` defaults to the quantization worker; tests pass a fake QuantApi. */
  constructor(
    hash: string,
    private readonly client: () => Remote<QuantApi> = quantClient,
  ) {
    this.exp = new ExperimentState(hash);
    this.analysis = new AnalysisState(() => this.result, () => this.api);
    this.instant = new InstantState(() => this.api);
    this.analysis.nameOf = (key) => this.instant.nameOf(key);
    onWorkerCrash((e) => void this.workerCrashed(e));
  }

  /**
   * The worker died (the client already answered its pending calls with the error and
   * will start a fresh one): what it had loaded is gone, so load the model and images
   * the config names again (from the cache and the dev server only); stored runs are
   * untouched. The message is shown where the run's errors are.
   */
  private async workerCrashed(e: ErrorInfo): Promise<void> {
    if (this.runState !== 'running') {
      this.runError = e;
      this.runState = 'error';
    }
    this.model = undefined;
    this.modelState = 'empty';
    this.dataset = undefined;
    this.dataState = 'empty';
    await this.restoreFromConfig();
  }

  private get api(): Remote<QuantApi> {
    return this.client();
  }

  /** First load: environment, shared files, history, and the model/data the link names. */
  async init(): Promise<void> {
    const env = await this.api.env();
    if (env.ok) this.env = env.value;
    if (this.env && !this.env.webgpu.available && this.enginePref === 'webgpu') this.enginePref = 'auto';
    await Promise.all([this.refreshHistory(), this.refreshCache(), this.loadSharedModelList(), this.refreshCachedModels()]);
    await this.restoreFromConfig();
  }

  /** Load what the config names, from cache or the dev server only (no surprise downloads). */
  async restoreFromConfig(): Promise<void> {
    const c = this.exp.config;
    if (this.model?.id !== c.model) {
      if (c.model.startsWith('sha256:')) {
        const sha = c.model.slice(7);
        if (this.cachedModels.some((m) => m.sha256 === sha)) await this.loadModel({ kind: 'cached', sha256: sha });
      } else {
        const r = await this.loadModel({ kind: 'registry', id: c.model }, { cacheOnly: true });
        void r;
      }
    }
    if (this.dataState !== 'ready') {
      if (c.dataset === 'imagenet-sample' && this.env?.sharedData) await this.loadSharedSample();
      else if (c.dataset.startsWith('url:')) await this.loadData({ kind: 'url', baseUrl: c.dataset.slice(4) }, c.dataset);
    }
  }

  async loadSharedModelList(): Promise<void> {
    if (!this.env?.sharedData) return;
    try {
      const r = await fetch('/shared-data/models/manifest.json');
      if (!r.ok) return;
      const m = (await r.json()) as { files: { name: string; size: number }[] };
      this.sharedModels = m.files.map((f) => ({ ...f, url: `/shared-data/models/${encodeURIComponent(f.name)}` }));
    } catch {
      /* no dev data: the list stays empty */
    }
  }

  async refreshCachedModels(): Promise<void> {
    const r = await this.api.listModels();
    if (r.ok) this.cachedModels = r.value;
  }

  /** Load a model; on success the config's `model` names it. */
  async loadModel(src: ModelSource, opts: { cacheOnly?: boolean } = {}): Promise<boolean> {
    if (opts.cacheOnly && src.kind === 'registry') {
      // Only use a cached copy silently; downloading waits for the user's click.
      
      let sha: string;
      try {
        sha = getModelEntry(src.id).downloads[src.download ?? 0].sha256;
      } catch {
        return false;
      }
      if (!this.cachedModels.some((m) => m.sha256 === sha)) return false;
    }
    this.modelState = 'loading';
    this.modelError = undefined;
    this.download = undefined;
    const onProgress = callback((p: DownloadProgress) => {
      this.download = p;
    });
    const r =
      src.kind === 'bytes' ? await this.api.loadModel(moveBytes(src, src.bytes), onProgress) : await this.api.loadModel(src, onProgress);
    this.download = undefined;
    if (!r.ok) {
      this.modelState = 'error';
      this.modelError = r.error;
      return false;
    }
    this.model = r.value;
    this.modelState = 'ready';
    if (this.exp.config.model !== r.value.id) this.exp.set('model', r.value.id);
    void this.refreshCachedModels();
    void this.refreshCache();
    return true;
  }

  async loadModelFile(file: File): Promise<boolean> {
    let bytes: Uint8Array;
    try {
      bytes = await readModelFile(file); // refused by size before it is read
    } catch (e) {
      this.modelState = 'error';
      this.modelError = toErrorInfo(e);
      return false;
    }
    return this.loadModel({ kind: 'bytes', bytes, name: file.name });
  }

  async loadSharedSample(): Promise<boolean> {
    return this.loadData({ kind: 'url', baseUrl: '/shared-data/imagenet-sample/' }, 'imagenet-sample');
  }

  /** Load images; `datasetId` becomes the config's `dataset`. */
  async loadData(src: DataSource, datasetId: string): Promise<boolean> {
    this.dataState = 'loading';
    this.dataError = undefined;
    const r = await this.api.loadDataset(src);
    if (!r.ok) {
      this.dataState = 'error';
      this.dataError = r.error;
      return false;
    }
    this.dataset = r.value;
    this.dataState = 'ready';
    if (this.exp.config.dataset !== datasetId) this.exp.set('dataset', datasetId);
    return true;
  }

  /** Look up a stored result for the current config (by configHash). */
  async lookupStored(key: string | undefined): Promise<void> {
    if (!key) return;
    if (this.result?.configHash === key) return;
    if (this.runState === 'running') return;
    const r = await this.api.getRun(key);
    if (key !== this.exp.key) return; // config changed meanwhile
    if (r.ok && r.value) {
      this.result = r.value;
      this.resultSource = 'stored';
    } else {
      this.result = undefined;
      this.resultSource = 'none';
    }
  }

  async run(): Promise<void> {
    if (this.runState === 'running') return;
    this.runState = 'running';
    this.runError = undefined;
    this.outcome = undefined;
    this.progress = { stage: 'load', done: 0, total: 1, message: 'Starting the engine' };
    const config = this.exp.snapshot();
    this.analyzing = this.analyze;
    const images = Math.max(1, Math.round(this.analysisImages) || 64);
    const r: Result<RunOutcome> = await this.api.run(
      [config],
      this.enginePref,
      callback((p: Progress) => {
        this.progress = p;
      }),
      this.analyze ? { analyze: { images } } : undefined,
    );
    this.analyzing = false;
    if (r.ok) {
      const { results, ...rest } = r.value;
      this.outcome = rest;
      this.result = results[0];
      this.resultSource = 'fresh';
      this.runState = 'done';
    } else if (r.error.code === 'CANCELLED') {
      this.runState = 'cancelled';
    } else {
      this.runError = r.error;
      this.runState = 'error';
    }
    await Promise.all([this.refreshHistory(), this.refreshCache()]);
  }

  async cancel(): Promise<void> {
    await this.api.cancel();
  }

  async refreshHistory(): Promise<void> {
    const r = await this.api.listRuns();
    if (r.ok) this.history = r.value;
    else this.storageError = r.error;
  }

  async deleteRun(hash: string): Promise<void> {
    await this.api.deleteRun(hash);
    this.compare = this.compare.filter((h) => h !== hash);
    await this.refreshHistory();
  }

  toggleCompare(hash: string): void {
    if (this.compare.includes(hash)) this.compare = this.compare.filter((h) => h !== hash);
    else this.compare = [...this.compare, hash].slice(-2);
  }

  async refreshCache(): Promise<void> {
    const r = await this.api.cacheEstimate();
    if (r.ok) this.cache = r.value;
  }

  async clearCache(): Promise<void> {
    const r = await this.api.clearCache();
    if (!r.ok) this.storageError = r.error;
    await Promise.all([this.refreshCache(), this.refreshCachedModels()]);
  }

  /**
   * Open a stored run: its config becomes the current one. The history holds runs without
   * their per-layer rows, so an analysed run is read again in full.
   */
  async openRun(r: ExperimentResult): Promise<void> {
    this.exp.config = structuredClone(r.config);
    this.result = r;
    this.resultSource = 'stored';
    if (r.analysis) {
      const full = await this.api.getRun(r.configHash);
      if (full.ok && full.value && this.result?.configHash === r.configHash) this.result = full.value;
    }
  }
}
