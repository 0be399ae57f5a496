/**
 * Application state as rune classes, in parts: the config (ExperimentState), one load slot
 * each for the model and the images (LoadSlot), the run (RunController), the stored runs
 * (HistoryState), the analysis and the instant views; AppState ties them to the link and
 * to each other. Talks to the worker through the typed client; every worker answer is a
 * Result, shown as data.
 * Must not: import components or do pipeline work.
 */
import { toErrorInfo, type ErrorInfo } from '../util/errors.ts';
import { DeployCheckState } from './deploy-check.svelte.ts';
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
  SiteInfo,
} from '../protocol/api.ts';
import type { Remote } from 'comlink';
import type { ExperimentResult } from '../experiment/types.ts';
import { callback, moveBytes, onWorkerCrash, quantClient, stopWorker } from '../clients/quant.ts';
import { runOption } from '../config/run-options.ts';
import { inDomain, type FieldKind } from '../config/schema.ts';
import { LoadSlot } from './load-slot.svelte.ts';
import { offlineStatus, type OfflineStatus } from '../offline/status.ts';
import { TRY_IT } from '../config/try-it.ts';
import { resolveConfig } from '../config/resolve.ts';
import type { ExperimentConfig } from '../config/types.ts';
import { downloadCost, type DownloadCost } from './download-cost.ts';
import { RunController } from './run-controller.svelte.ts';
import { HistoryState } from './history.svelte.ts';
import { ExperimentState } from './experiment.svelte.ts';
import { AnalysisState } from './analysis.svelte.ts';
import { InstantState } from './instant.svelte.ts';
import { ImportedState } from './imported.svelte.ts';
import { SearchState } from './search.svelte.ts';
import { getModelEntry, knownHashes } from '../models/registry.ts';
import {
  parseLink,
  serializeLink,
  type DataSourceRef,
  type LinkExtras,
  type LinkView,
  type ModelSourceRef,
} from '../config/link.ts';
import { findLesson } from '../../lessons/index.ts';
import { DEV_SAMPLE, dataSourceName, modelSourceOf, planData, planModel, sourceFileName } from './link-resolve.ts';

export type { LoadState } from './load-slot.svelte.ts';

const ANALYSIS_IMAGES = runOption('analysisImages').app! as { type: FieldKind; default: number };
export { CANCEL_GRACE_MS, type RunState } from './run-controller.svelte.ts';

/** Where the site is (for site.json) and the policy its page carries, for the worker's downloads. */
function siteInfo(): SiteInfo {
  if (typeof document === 'undefined') return { root: 'http://localhost/' };
  const policy = document.querySelector('meta[http-equiv="Content-Security-Policy"]')?.getAttribute('content');
  return { root: new URL(import.meta.env.BASE_URL ?? '/', location.href).href, ...(policy ? { policy } : {}) };
}

/** The link's model file, asked for; `registry`: a registry model the user may load instead (another copy of its weights). */
export interface ModelAsk {
  name: string;
  sha256: string;
  registry?: string;
}

export interface SharedModelFile {
  name: string;
  size: number;
  /** the dev server hashes its files, so a copy of a registry model is recognised */
  sha256?: string;
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
  /** a quantized model opened by the user: its quantization, evaluation as it is, float parent */
  readonly imported: ImportedState;
  /** the accuracy-aware search and the size/top-1 front from a result */
  readonly search: SearchState;
  /** the model: loaded, its source as a link names it, or the file a link asks for */
  readonly model = new LoadSlot<LoadedModel, ModelSourceRef, ModelAsk>();
  /** the images, likewise */
  readonly data = new LoadSlot<DatasetInfo, DataSourceRef, { name: string; fingerprint: string }>();
  readonly runner: RunController;
  /** "Check on integer kernels" and the gap table per preset */
  readonly deploy: DeployCheckState;
  readonly history: HistoryState;

  env = $state<EnvInfo | undefined>(undefined);
  enginePref = $state<EnginePref>('auto');
  /** a model download in progress */
  download = $state<DownloadProgress | undefined>(undefined);
  sharedModels = $state<SharedModelFile[]>([]);
  cachedModels = $state<{ sha256: string; name: string; size: number }[]>([]);
  /** what the opened link asks for (model, images) and is not loaded yet */
  wanted = $state<LinkExtras>({});

  /** run option (not part of the config): also analyse why accuracy drops */
  analyze = $state(false);
  /** evaluation images the per-layer analysis uses (the first ones of the evaluation split) */
  analysisImages = $state(ANALYSIS_IMAGES.default);

  /** the open guided lesson (its id; LessonsState opens and closes it); the link carries it */
  lessonId = $state<string | undefined>(undefined);
  /** the page's section below the controls; the link carries it */
  view = $state<LinkView>('learn');
  /** the worker was ended by a cancel and the model and images are being loaded again */
  reloading = $state(false);

  /** result shown: the current config's stored result or the run just finished */
  result = $state.raw<ExperimentResult | undefined>(undefined);
  resultSource = $state<'none' | 'stored' | 'fresh'>('none');

  cache = $state.raw<CacheEstimate | undefined>(undefined);
  storageError = $state<ErrorInfo | undefined>(undefined);

  /** the storage error concerns the whole tab (another tab upgraded or holds the stored data) */
  get storageBlocksTab(): boolean {
    const c = this.storageError?.code;
    return c === 'STORAGE_OUTDATED' || c === 'STORAGE_BLOCKED';
  }
  /** sentences about the site's mirrors (a site.json that could not be read) */
  siteNotices = $state<string[]>([]);
  /** the offline cache: ready, a new version waiting, or why it is unavailable */
  offline = $state<OfflineStatus>(offlineStatus.get());

  /** what "Try it" downloads on a first visit */
  tryItCost = $state<DownloadCost | undefined>(undefined);

  /** Switch to the new version of the app that waits (the page reloads). */
  applyUpdate(): Promise<void> {
    return offlineStatus.applyUpdate();
  }

  /** wasm runs on one thread: the page is not cross-origin isolated (the host sends no isolation headers) */
  get singleThread(): boolean {
    return !!this.env && !this.env.crossOriginIsolated;
  }

  /** The shareable hash: the config plus the model, images, engine and analysis in use (or still wanted). */
  get link(): string {
    return this.linkFor(this.exp.config, this.exp.hidden);
  }

  /** The shareable hash of another config (a search's point) with the model, images and engine in use. */
  linkFor(config: ExperimentConfig, hidden: Iterable<string> = []): string {
    const m = this.model.value;
    const d = this.data.value;
    return serializeLink(config, hidden, {
      model: m ? { sha256: m.sha256, source: this.model.ref } : this.wanted.model,
      data: d ? { fingerprint: d.fingerprint, source: this.data.ref } : this.wanted.data,
      engine: this.enginePref,
      analyze: this.analyze ? this.analysisImageCount : undefined,
      lesson: this.lessonId,
      view: this.view,
    });
  }

  /** the analysis image count as asked for, inside the run option's domain */
  private get analysisImageCount(): number {
    const n = Math.round(this.analysisImages);
    return inDomain(ANALYSIS_IMAGES.type, n) ? n : ANALYSIS_IMAGES.default;
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
    this.view = p.extras.view ?? 'learn';
    if (p.extras.lesson && !findLesson(p.extras.lesson)) {
      this.exp.notices = [
        ...this.exp.notices,
        `The link opens the lesson "${p.extras.lesson}", which this version does not have; the settings are loaded without it.`,
      ];
    }
    this.lessonId = p.extras.lesson && findLesson(p.extras.lesson) ? p.extras.lesson : undefined;
  }

  get runnable(): boolean {
    return (
      this.model.ready &&
      this.data.ready &&
      !this.runner.running &&
      !this.deploy.running &&
      !this.search.running &&
      !this.exp.invalid &&
      // a quantized file is evaluated as it is (ImportedState), not run with settings
      !this.model.value?.quantized &&
      this.imported.busy === 'idle'
    );
  }

  /** `client` defaults to the quantization worker; tests pass a fake QuantApi. */
  constructor(
    hash: string,
    private readonly client: () => Remote<QuantApi> = quantClient,
    /** ends a worker that ignores a cancel (tests pass a fake) */
    stop: () => boolean = stopWorker,
  ) {
    this.exp = new ExperimentState('');
    this.runner = new RunController(
      () => this.api,
      stop,
      () => {
        this.dropLoaded();
        this.reloadAfterStop = true;
        this.reloading = true;
      },
    );
    this.history = new HistoryState(() => this.api);
    this.deploy = new DeployCheckState(() => this.api);
    this.search = new SearchState(
      () => this.api,
      () => this.enginePref,
    );
    this.openLink(hash);
    this.analysis = new AnalysisState(
      () => this.result,
      () => this.api,
    );
    this.instant = new InstantState(() => this.api);
    this.imported = new ImportedState(this, () => this.api);
    this.analysis.nameOf = (key) => this.instant.nameOf(key);
    onWorkerCrash((e) => void this.workerCrashed(e));
    offlineStatus.subscribe((s) => (this.offline = s));
  }

  /**
   * Load the model and images the config names if they are not loaded: the model from this
   * browser's cache, the dev server's copy, or the registry (site mirrors, then its public
   * URL); the images from the dev server's sample or the registry's. What a lesson or
   * "Try it" does on a click, so the student chooses nothing.
   */
  async ensureInputs(): Promise<boolean> {
    const c = this.exp.config;
    if (this.model.value?.id !== c.model && !c.model.startsWith('sha256:')) {
      const known = knownHashes(getModelEntry(c.model));
      const dev = this.sharedModels.find((f) => f.sha256 && known.includes(f.sha256));
      const ok = dev
        ? await this.loadModel({ kind: 'url', url: dev.url, name: dev.name }, {}, { kind: 'dev', name: dev.name })
        : await this.loadModel({ kind: 'registry', id: c.model });
      if (!ok) return false;
    }
    if (this.data.value === undefined || this.loadedDataset !== c.dataset || !this.data.ready) {
      if (c.dataset === DEV_SAMPLE && this.env?.sharedData) return this.loadSharedSample();
      if (c.dataset === DEV_SAMPLE) return this.loadRegistryImages(DEV_SAMPLE);
    }
    return this.model.ready && this.data.ready;
  }

  /** "Try it": the first experiment (config/try-it.ts) with the model and sample loaded, run. */
  async tryIt(): Promise<void> {
    this.exp.config = resolveConfig(TRY_IT);
    this.wanted = {};
    if (await this.ensureInputs()) await this.run();
  }

  /**
   * The worker died (the client already answered its pending calls with the error and
   * will start a fresh one): what it had loaded is gone, so load the model and images
   * the config names again (from the cache and the dev server only); stored runs are
   * untouched. The message is shown where the run's errors are.
   */
  private async workerCrashed(e: ErrorInfo): Promise<void> {
    this.runner.failIdle(e);
    this.dropLoaded();
    await this.restoreFromConfig();
  }

  /** The worker's model and images are gone: want them again, by hash and fingerprint. */
  private dropLoaded(): void {
    const m = this.model.value;
    const d = this.data.value;
    this.wanted = {
      ...this.wanted,
      ...(m ? { model: { sha256: m.sha256, source: this.model.ref } } : {}),
      ...(d ? { data: { fingerprint: d.fingerprint, source: this.data.ref } } : {}),
    };
    this.model.drop();
    this.data.drop();
  }

  private get api(): Remote<QuantApi> {
    return this.client();
  }

  /** First load: the site, environment, shared files, history, and the model/data the link names. */
  async init(): Promise<void> {
    // what the student opens while the page starts wins over what the link or config restores
    const since = { models: this.modelLoads, data: this.dataLoads };
    const site = await this.api.configureSite(siteInfo());
    if (site.ok) this.siteNotices = site.value.notices;
    void downloadCost(resolveConfig(TRY_IT)).then((c) => (this.tryItCost = c));
    const env = await this.api.env();
    if (env.ok) this.env = env.value;
    if (this.env && !this.env.webgpu.available && this.enginePref === 'webgpu') this.enginePref = 'auto';
    await Promise.all([
      this.history.refresh(),
      this.refreshCache(),
      this.loadSharedModelList(),
      this.refreshCachedModels(),
    ]);
    await this.restoreFromConfig(since);
  }

  /**
   * Load what the link names without a click where it can be had (state/link-resolve.ts):
   * the model by sha256 from the cache, a registry download, the dev server or its URL;
   * the images from the dev sample or their URL. A local file or folder is asked for.
   * Links without model and image names (older ones) load what the config names from the
   * cache or the dev server only.
   */
  async restoreFromConfig(since = { models: this.modelLoads, data: this.dataLoads }): Promise<void> {
    const want = this.wanted;
    // a model or images the student opened since `since` are kept: nothing is restored over them
    const modelPicked = () => this.modelLoads !== since.models;
    const dataPicked = () => this.dataLoads !== since.data;
    if (want.model && !modelPicked() && this.model.value?.sha256 !== want.model.sha256) {
      const step = planModel(want.model, { cached: this.cachedModels, devFiles: this.sharedModels });
      if (step.kind === 'load') {
        this.model.ask = undefined;
        const loaded = await this.loadModel(step.src, {}, step.source);
        // no mirror has the link's copy of a registry model: ask for the file, or offer the registry's own
        if (!loaded && step.via === 'registry' && step.src.kind === 'registry')
          this.model.ask = {
            name: sourceFileName(step.source) ?? `the link's copy of ${step.src.id}`,
            sha256: want.model.sha256,
            registry: step.src.id,
          };
      } else {
        this.model.ask = { name: step.name, sha256: step.sha256 };
      }
    }
    if (want.data && !dataPicked() && this.data.value?.fingerprint !== want.data.fingerprint) {
      const step = planData(want.data, !!this.env?.sharedData);
      if (step.kind === 'dev') await this.loadSharedSample();
      else if (step.kind === 'registry') await this.loadRegistryImages(step.id);
      else if (step.kind === 'url')
        await this.loadData({ kind: 'url', baseUrl: step.baseUrl }, `url:${step.baseUrl}`, step.source);
      else this.data.ask = { name: step.name, fingerprint: step.fingerprint };
    }
    const c = this.exp.config;
    if (!want.model && !modelPicked() && this.model.value?.id !== c.model) {
      if (c.model.startsWith('sha256:')) {
        const sha = c.model.slice(7);
        if (this.cachedModels.some((m) => m.sha256 === sha)) await this.loadModel({ kind: 'cached', sha256: sha });
      } else {
        await this.loadModel({ kind: 'registry', id: c.model }, { cacheOnly: true });
      }
    }
    if (!want.data && !dataPicked() && !this.data.ready) {
      if (c.dataset === DEV_SAMPLE && this.env?.sharedData) await this.loadSharedSample();
      // opening the registry's sample reads its embedded manifest only: files come when a run needs them
      else if (c.dataset === DEV_SAMPLE) await this.loadRegistryImages(DEV_SAMPLE);
      else if (c.dataset.startsWith('url:'))
        await this.loadData({ kind: 'url', baseUrl: c.dataset.slice(4) }, c.dataset);
    }
    // a lesson's link opens as the lesson does from the list: its model and images load, Run is the only click
    if (this.lessonId && !want.model && !want.data && !(this.model.ready && this.data.ready)) await this.ensureInputs();
  }

  async loadSharedModelList(): Promise<void> {
    if (!this.env?.sharedData) return;
    try {
      const r = await fetch('/shared-data/models/manifest.json');
      if (!r.ok) return;
      const m = (await r.json()) as { files: { name: string; size: number; sha256?: string }[] };
      this.sharedModels = m.files.map((f) => ({ ...f, url: `/shared-data/models/${encodeURIComponent(f.name)}` }));
    } catch {
      /* no dev data: the list stays empty */
    }
  }

  async refreshCachedModels(): Promise<void> {
    const r = await this.api.listModels();
    if (r.ok) this.cachedModels = r.value;
  }

  /**
   * The `dataset` name of the images the worker holds (a lesson or Try it may set the config
   * to other images while these stay loaded; then they load the ones it names).
   */
  private loadedDataset: string | undefined;

  /** Model loads started so far: only the latest one's outcome is shown. */
  private modelLoads = 0;
  /** Image loads started so far. */
  private dataLoads = 0;

  /** Load a model; on success the config's `model` names it. */
  async loadModel(src: ModelSource, opts: { cacheOnly?: boolean } = {}, source?: ModelSourceRef): Promise<boolean> {
    if (opts.cacheOnly && src.kind === 'registry') {
      // Only use a cached copy silently; downloading waits for the user's click.
      let known: string[];
      try {
        known = src.sha256 ? [src.sha256] : knownHashes(getModelEntry(src.id));
      } catch {
        return false;
      }
      if (!this.cachedModels.some((m) => known.includes(m.sha256))) return false;
    }
    this.model.begin();
    this.download = undefined;
    const load = ++this.modelLoads;
    const onProgress = callback((p: DownloadProgress) => {
      this.download = p;
    });
    const r =
      src.kind === 'bytes'
        ? await this.api.loadModel(moveBytes(src, src.bytes), onProgress)
        : await this.api.loadModel(src, onProgress);
    // a later load (the student's pick during a link's silent restore) decides what is shown
    if (load !== this.modelLoads) return false;
    this.download = undefined;
    if (!r.ok) {
      this.model.fail(r.error);
      return false;
    }
    this.model.succeed(
      r.value,
      r.value.verified === 'match' ? { kind: 'registry', id: r.value.id } : (source ?? modelSourceOf(src, r.value)),
    );
    this.imported.noteModel(r.value);
    if (this.wanted.model) this.wanted = { ...this.wanted, model: undefined };
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
      this.model.fail(toErrorInfo(e));
      return false;
    }
    // a link that asked for this file: refuse one with another hash (the worker checks)
    const expectSha256 = this.model.ask?.sha256;
    return this.loadModel({ kind: 'bytes', bytes, name: file.name, ...(expectSha256 ? { expectSha256 } : {}) });
  }

  /** A registry image set (the public ImageNet sample): its files come from the site's mirrors or the public sources. */
  async loadRegistryImages(id: string): Promise<boolean> {
    return this.loadData({ kind: 'registry', id }, id, { kind: 'registry', id });
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
    this.data.begin();
    this.dataLoads++;
    const r = await this.api.loadDataset(src);
    if (!r.ok) {
      this.data.fail(r.error);
      return false;
    }
    const want = this.wanted.data;
    if (want && r.value.fingerprint !== want.fingerprint) {
      this.data.fail(
        {
          code: 'DATA_NOT_FOUND',
          userError: true,
          message: `These images are not the ones the link was made with: ${r.value.images} images with fingerprint ${r.value.fingerprint}, the link needs ${want.fingerprint} (${want.fingerprint.split('-')[0]} images${want.source ? ` from "${dataSourceName(want.source)}"` : ''}). Load those images, or choose "Use other images" to run on these anyway (the results will then differ from the link's).`,
        },
        true,
      );
      return false;
    }
    this.data.succeed(
      r.value,
      source ?? (src.kind === 'url' ? { kind: 'url', url: src.baseUrl } : { kind: 'folder', name: r.value.name }),
    );
    this.wanted = { ...this.wanted, data: undefined };
    const id = datasetId ?? r.value.name;
    this.loadedDataset = id;
    if (this.exp.config.dataset !== id) this.exp.set('dataset', id);
    return true;
  }

  /** Give up on the link's images or model: choose freely (the results may differ from the link's). */
  forgetWanted(what: 'model' | 'data'): void {
    this.wanted = { ...this.wanted, [what]: undefined };
    if (what === 'model') this.model.ask = undefined;
    else {
      this.data.ask = undefined;
      this.data.clearError();
    }
  }

  /** Look up a stored result for the current config (by configHash). */
  async lookupStored(key: string | undefined): Promise<void> {
    if (!key) return;
    if (this.result?.configHash === key) return;
    if (this.runner.running) return;
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

  /** Run the current config (with the analysis when asked); the result shows when it is stored. */
  async run(): Promise<void> {
    if (this.runner.running) return;
    const result = await this.runner.run(
      {
        config: this.exp.snapshot(),
        engine: this.enginePref,
        analyze: this.analyze ? { images: this.analysisImageCount } : undefined,
        available: this.data.value?.images,
      },
      async (r) => {
        this.result = r;
        this.resultSource = 'fresh';
        // the history lists this run by the time the run shows as done
        await this.history.refresh();
      },
    );
    if (!result && this.runner.state === 'cancelled') {
      this.result = undefined;
      this.resultSource = 'none';
    }
    if (this.reloadAfterStop) {
      this.reloadAfterStop = false;
      try {
        await this.refreshCachedModels();
        await this.restoreFromConfig();
      } finally {
        this.reloading = false;
      }
    }
    await Promise.all([result ? undefined : this.history.refresh(), this.refreshCache()]);
    void this.lookupStored(this.exp.key);
  }

  /** Cancel the run (see RunController.cancel). */
  cancel(): Promise<void> {
    return this.runner.cancel();
  }

  /** the worker was ended by a cancel: load the model and images again once the run has answered */
  private reloadAfterStop = false;

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
