/**
 * Application state as rune classes: environment, model, data source, the run in
 * progress, the stored result of the current config, history and cache. Talks to the
 * worker through the typed client; every worker answer is a Result, shown as data.
 * Must not: import components or do pipeline work.
 */
import { toErrorInfo, type ErrorInfo, type Result } from '../util/errors.ts';
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
import { callback, moveBytes, onWorkerCrash, quantClient, stopWorker } from '../clients/quant.ts';
import { ExperimentState } from './experiment.svelte.ts';
import { AnalysisState } from './analysis.svelte.ts';
import { InstantState } from './instant.svelte.ts';
import { getModelEntry } from '../models/registry.ts';
import { parseLink, serializeLink, type DataSourceRef, type LinkExtras, type ModelSourceRef } from '../config/link.ts';
import { DEV_SAMPLE, modelSourceOf, planData, planModel } from './link-resolve.ts';

/** How long a cancelled run may take to reach a batch boundary before its worker is ended (ms). */
export const CANCEL_GRACE_MS = 500;

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

  /** where the loaded model and images came from, as a link names them */
  modelRef = $state<ModelSourceRef | undefined>(undefined);
  dataRef = $state<DataSourceRef | undefined>(undefined);
  /** what the opened link asks for (model, images) and is not loaded yet */
  wanted = $state<LinkExtras>({});
  /** the link names a local file: the user is asked for it ("Open mobilenet.onnx, sha256 f0013059…") */
  askModel = $state<{ name: string; sha256: string } | undefined>(undefined);
  askData = $state<{ name: string; fingerprint: string } | undefined>(undefined);

  /** The shareable hash: the config plus the model, images, engine and analysis in use (or still wanted). */
  get link(): string {
    const model = this.model ? { sha256: this.model.sha256, source: this.modelRef } : this.wanted.model;
    const data = this.dataset ? { fingerprint: this.dataset.fingerprint, source: this.dataRef } : this.wanted.data;
    return serializeLink(this.exp.config, this.exp.hidden, {
      model,
      data,
      engine: this.enginePref,
      analyze: this.analyze ? Math.max(1, Math.round(this.analysisImages) || 64) : undefined,
    });
  }

  /** Open a link (first load, hash edited): settings now, model and images by restoreFromConfig. */
  openLink(hash: string): void {
    const p = parseLink(hash);
    this.exp.loadParsed(p);
    this.wanted = p.extras;
    if (p.extras.engine) this.enginePref = p.extras.engine;
    if (p.extras.analyze !== undefined) {
      this.analyze = true;
      this.analysisImages = p.extras.analyze;
    } else if (p.extras.model) {
      this.analyze = false; // a full link says the analysis was off
    }
  }

  /** run option (not part of the config): also analyse why accuracy drops */
  analyze = $state(false);
  /** evaluation images the per-layer analysis uses (the first ones of the evaluation split) */
  analysisImages = $state(64);
  /** the run in progress was asked to analyse */
  analyzing = $state(false);

  runState = $state<RunState>('idle');
  /** Cancel was pressed and the run has not stopped yet ("Cancelling…") */
  cancelling = $state(false);
  /** how the last cancelled run ended: at a batch boundary, or its worker was ended */
  cancelEnd = $state<'boundary' | 'stopped' | undefined>(undefined);
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
    return (
      this.modelState === 'ready' && this.dataState === 'ready' && this.runState !== 'running' && !this.exp.invalid
    );
  }

  /** `client` defaults to the quantization worker; tests pass a fake QuantApi. */
  constructor(
    hash: string,
    private readonly client: () => Remote<QuantApi> = quantClient,
    /** ends a worker that ignores a cancel (tests pass a fake) */
    private readonly stop: () => boolean = stopWorker,
  ) {
    this.exp = new ExperimentState('');
    this.openLink(hash);
    this.analysis = new AnalysisState(
      () => this.result,
      () => this.api,
    );
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
    this.dropLoaded();
    await this.restoreFromConfig();
  }

  /** The worker's model and images are gone: want them again, by hash and fingerprint. */
  private dropLoaded(): void {
    this.wanted = {
      ...this.wanted,
      ...(this.model ? { model: { sha256: this.model.sha256, source: this.modelRef } } : {}),
      ...(this.dataset ? { data: { fingerprint: this.dataset.fingerprint, source: this.dataRef } } : {}),
    };
    this.model = undefined;
    this.modelState = 'empty';
    this.dataset = undefined;
    this.dataState = 'empty';
  }

  private get api(): Remote<QuantApi> {
    return this.client();
  }

  /** First load: environment, shared files, history, and the model/data the link names. */
  async init(): Promise<void> {
    const env = await this.api.env();
    if (env.ok) this.env = env.value;
    if (this.env && !this.env.webgpu.available && this.enginePref === 'webgpu') this.enginePref = 'auto';
    await Promise.all([
      this.refreshHistory(),
      this.refreshCache(),
      this.loadSharedModelList(),
      this.refreshCachedModels(),
    ]);
    await this.restoreFromConfig();
  }

  /**
   * Load what the link names without a click where it can be had (state/link-resolve.ts):
   * the model by sha256 from the cache, a registry download, the dev server or its URL;
   * the images from the dev sample or their URL. A local file or folder is asked for.
   * Links without model and image names (older ones) load what the config names from the
   * cache or the dev server only.
   */
  async restoreFromConfig(): Promise<void> {
    const want = this.wanted;
    if (want.model && this.model?.sha256 !== want.model.sha256) {
      const step = planModel(want.model, { cached: this.cachedModels, devFiles: this.sharedModels });
      if (step.kind === 'load') {
        this.askModel = undefined;
        await this.loadModel(step.src, {}, step.source);
      } else {
        this.askModel = { name: step.name, sha256: step.sha256 };
      }
    }
    if (want.data && this.dataset?.fingerprint !== want.data.fingerprint) {
      const step = planData(want.data, !!this.env?.sharedData);
      if (step.kind === 'dev') await this.loadSharedSample();
      else if (step.kind === 'url')
        await this.loadData({ kind: 'url', baseUrl: step.baseUrl }, `url:${step.baseUrl}`, step.source);
      else this.askData = { name: step.name, fingerprint: step.fingerprint };
    }
    const c = this.exp.config;
    if (!want.model && this.model?.id !== c.model) {
      if (c.model.startsWith('sha256:')) {
        const sha = c.model.slice(7);
        if (this.cachedModels.some((m) => m.sha256 === sha)) await this.loadModel({ kind: 'cached', sha256: sha });
      } else {
        const r = await this.loadModel({ kind: 'registry', id: c.model }, { cacheOnly: true });
        void r;
      }
    }
    if (!want.data && this.dataState !== 'ready') {
      if (c.dataset === 'imagenet-sample' && this.env?.sharedData) await this.loadSharedSample();
      else if (c.dataset.startsWith('url:'))
        await this.loadData({ kind: 'url', baseUrl: c.dataset.slice(4) }, c.dataset);
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
  async loadModel(src: ModelSource, opts: { cacheOnly?: boolean } = {}, source?: ModelSourceRef): Promise<boolean> {
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
      src.kind === 'bytes'
        ? await this.api.loadModel(moveBytes(src, src.bytes), onProgress)
        : await this.api.loadModel(src, onProgress);
    this.download = undefined;
    if (!r.ok) {
      this.modelState = 'error';
      this.modelError = r.error;
      return false;
    }
    this.model = r.value;
    this.modelState = 'ready';
    this.modelRef =
      r.value.verified === 'match'
        ? { kind: 'registry', id: r.value.id }
        : (source ?? modelSourceOf(src, r.value.name));
    if (this.wanted.model) this.wanted = { ...this.wanted, model: undefined };
    this.askModel = undefined;
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
    // a link that asked for this file: refuse one with another hash (the worker checks)
    const expectSha256 = this.askModel?.sha256;
    return this.loadModel({ kind: 'bytes', bytes, name: file.name, ...(expectSha256 ? { expectSha256 } : {}) });
  }

  async loadSharedSample(): Promise<boolean> {
    return this.loadData({ kind: 'url', baseUrl: '/shared-data/imagenet-sample/' }, DEV_SAMPLE, {
      kind: 'dev',
      name: DEV_SAMPLE,
    });
  }

  /**
   * Load images; `datasetId` becomes the config's `dataset` (picked files: the folder's
   * name, as the CLI names a folder). Images a link asked for must have its fingerprint:
   * others are refused, saying both, rather than run under the link's name.
   */
  async loadData(src: DataSource, datasetId?: string, source?: DataSourceRef): Promise<boolean> {
    this.dataState = 'loading';
    this.dataError = undefined;
    const r = await this.api.loadDataset(src);
    if (!r.ok) {
      this.dataState = 'error';
      this.dataError = r.error;
      return false;
    }
    const want = this.wanted.data;
    if (want && r.value.fingerprint !== want.fingerprint) {
      this.dataset = undefined;
      this.dataState = 'error';
      this.dataError = {
        code: 'DATA_NOT_FOUND',
        userError: true,
        message: `These images are not the ones the link was made with: ${r.value.images} images with fingerprint ${r.value.fingerprint}, the link needs ${want.fingerprint} (${want.fingerprint.split('-')[0]} images${want.source ? ` from "${want.source.kind === 'url' ? want.source.url : want.source.name}"` : ''}). Load those images, or choose "Use other images" to run on these anyway (the results will then differ from the link's).`,
      };
      return false;
    }
    this.dataset = r.value;
    this.dataState = 'ready';
    this.dataRef =
      source ?? (src.kind === 'url' ? { kind: 'url', url: src.baseUrl } : { kind: 'folder', name: r.value.name });
    this.wanted = { ...this.wanted, data: undefined };
    this.askData = undefined;
    const id = datasetId ?? r.value.name;
    if (this.exp.config.dataset !== id) this.exp.set('dataset', id);
    return true;
  }

  /** Give up on the link's images or model: choose freely (the results may differ from the link's). */
  forgetWanted(what: 'model' | 'data'): void {
    this.wanted = { ...this.wanted, [what]: undefined };
    if (what === 'model') this.askModel = undefined;
    else {
      this.askData = undefined;
      this.dataError = undefined;
      if (this.dataState === 'error') this.dataState = 'empty';
    }
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
    this.runSeq++;
    this.cancelling = false;
    this.cancelEnd = undefined;
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
      // the history lists this run by the time the run shows as done
      await this.refreshHistory();
      this.runState = 'done';
    } else if (r.error.code === 'CANCELLED') {
      this.cancelEnd ??= 'boundary';
      this.runState = 'cancelled';
      this.result = undefined;
      this.resultSource = 'none';
    } else {
      this.runError = r.error;
      this.runState = 'error';
    }
    this.cancelling = false;
    if (this.reloadAfterStop) {
      this.reloadAfterStop = false;
      await this.refreshCachedModels();
      await this.restoreFromConfig();
    }
    await Promise.all([r.ok ? undefined : this.refreshHistory(), this.refreshCache()]);
    void this.lookupStored(this.exp.key);
  }

  /**
   * Cancel the run: acknowledged at once (`cancelling`), the worker stops at its next
   * batch boundary. If it has not stopped after CANCEL_GRACE_MS (a stage without batch
   * boundaries), the worker is ended, the run answers CANCELLED, and the model and images
   * are loaded again from the cache, so the app stays usable either way.
   */
  async cancel(): Promise<void> {
    if (this.runState !== 'running' || this.cancelling) return;
    this.cancelling = true;
    const run = this.runSeq;
    const timer = setTimeout(() => {
      if (this.runSeq !== run || this.runState !== 'running') return;
      if (this.stop()) {
        this.cancelEnd = 'stopped';
        this.dropLoaded();
        this.reloadAfterStop = true;
      }
    }, CANCEL_GRACE_MS);
    await this.api.cancel();
    void timer;
  }

  private runSeq = 0;
  private reloadAfterStop = false;

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
