/**
 * The quantization worker's API as a plain object (QuantApi): dispatches each call to
 * the shared core — adopting models (src/lib/models/adopt.ts), data sources
 * (src/lib/data/sources.ts), the pipeline (src/lib/pipeline/run.ts) on the browser
 * engine with an IndexedDB crop cache — and stores results by config hash.
 * `quant.worker.ts` only exposes it; tests call `createQuantApi()` directly.
 *
 * Every method returns `Result<T>`; nothing throws across the boundary. One piece of
 * work at a time: a new load or run cancels nothing by itself, `cancel()` does.
 * An analysed run leaves the analysis context of its last config here (the pipeline's
 * keepContext hook: graph, quantizers, calibration crops, tens of MB) so `layerDetail`
 * answers without re-running anything; the next run or model/data load drops it.
 * Must not: hold UI state, import Svelte, or implement core logic (parsing, hashing,
 * manifests, pipeline steps): it only gathers inputs and keeps the session's state.
 */
import { transfer } from 'comlink';
import { runOption } from '../src/lib/config/run-options.ts';
import { describeDomain, inDomain } from '../src/lib/config/schema.ts';
import { asResult, QpError, throwIfAborted, toErrorInfo, type Result } from '../src/lib/util/errors.ts';
import { configHash } from '../src/lib/config/hash.ts';
import type {
  DataSource,
  DatasetInfo,
  DownloadProgress,
  EnginePref,
  EnvInfo,
  ExportedRun,
  LayerDetailView,
  LoadedModel,
  ModelSource,
  QuantApi,
  RunOutcome,
  RunRequestOptions,
} from '../src/lib/protocol/api.ts';
import type { LayerDetail, LayerDetailContext } from '../src/lib/analysis/index.ts';
import type { runPipeline } from '../src/lib/pipeline/run.ts';
import type { ExperimentConfig } from '../src/lib/config/types.ts';
import type { Dataset } from '../src/lib/data/types.ts';
import type { ExperimentResult, ModelSpec, Progress, RunInputs, RunOptions } from '../src/lib/experiment/types.ts';
import type { FileDataset } from '../src/lib/data/dataset.ts';
import {
  classIndexFromUrl,
  datasetFromManifest,
  datasetFromPickedFiles,
  downloadModel,
  type Fetcher,
} from '../src/lib/data/sources.ts';
import { adoptModel, type AdoptOptions } from '../src/lib/models/adopt.ts';
import { registryDownloads, type RegistryDownloads } from '../src/lib/models/registry-downloads.ts';
import type { RegistryImages } from '../src/lib/data/registry-images.ts';
import { progressText, violationLog, type DownloadEnv } from '../src/lib/data/downloads.ts';
import { loadSiteConfig } from '../src/lib/data/mirrors.ts';
import { connectCheck } from '../src/lib/util/csp.ts';
import { fingerprintOf } from '../src/lib/data/fingerprint.ts';
import { getModelEntry, knownHashes } from '../src/lib/models/registry.ts';
import { sharedDecodePool } from '../src/lib/data/decode-pool.ts';
import type { Cropper } from '../src/lib/data/crops.ts';
import { QpStorage, getStorage } from '../src/lib/storage/db.ts';
import type { BrowserEngine } from '../src/lib/engine/browser.ts';
import { instantMethods } from './instant.ts';
import type { DeployCheck, DeployProgress } from '../src/lib/protocol/deploy.ts';
import type { DeployStep } from '../src/lib/export/deploy-record.ts';
import type { AsIsResult, ImportedComparison } from '../src/lib/protocol/imported.ts';
import type { SearchOutcome, SearchProgress } from '../src/lib/protocol/search.ts';
import { isQuantizedGraph, readImported, type ImportedModel } from '../src/lib/imported/read.ts';
import { pairWithParent, quantizedInfo, type ImportedPair } from '../src/lib/imported/pair.ts';
import type { AsIsOutcome } from '../src/lib/pipeline/imported.ts';
import type { Engine } from '../src/lib/engine/types.ts';
import { parseModel, serializeModel } from '../src/lib/onnx/model.ts';
import { NO_IMPORTED_SCHEME } from '../src/lib/config/names.ts';

export interface QuantApiDeps {
  storage: QpStorage;
  fetch: typeof fetch;
  createEngine: (pref: EnginePref) => Promise<BrowserEngine & { laterFallback?: () => string | undefined }>;
  runPipeline: () => Promise<typeof runPipeline>;
  /** decode + preprocess off the worker's thread (the page's decode pool; tests decode in place) */
  cropper: () => Cropper | undefined;
  env: () => Promise<Omit<EnvInfo, 'sharedData'>>;
  /** base URL that relative URLs resolve against (the page's origin in a worker) */
  base: string;
}

/** Evaluation batch of runs in the browser (the run option's app default). */
export const BROWSER_EVAL_BATCH = runOption('evalBatch').app!.default as number;

/** URL of the dev server's copy of ../shared/data (absent in production builds). */
export const SHARED_DATA = '/shared-data/';

const ANALYSIS_IMAGES = runOption('analysisImages').app!;

/** Analysis images asked for, checked against the run option's domain (its default when not given). */
function analysisImages(n: number | undefined): number {
  if (n === undefined) return ANALYSIS_IMAGES.default as number;
  if (!inDomain(ANALYSIS_IMAGES.type, n))
    throw new QpError(
      'ARG_INVALID',
      `The number of analysis images must be ${describeDomain(ANALYSIS_IMAGES.type)}, got ${n}.`,
    );
  return n;
}

/** LayerDetail with its long arrays packed into typed arrays (to be transferred). */
export function toDetailView(configHash: string, d: LayerDetail): LayerDetailView {
  const w = d.weight;
  return {
    configHash,
    name: d.name,
    weight: {
      ...w,
      counts: Float64Array.from(w.counts),
      quantizedCounts: Float64Array.from(w.quantizedCounts),
      channelMin: Float32Array.from(w.channelMin),
      channelMax: Float32Array.from(w.channelMax),
      gridPoints: w.gridPoints ? Float64Array.from(w.gridPoints) : undefined,
    },
    activation: d.activation ? { ...d.activation, counts: Float64Array.from(d.activation.counts) } : null,
  };
}

function detailBuffers(v: LayerDetailView): ArrayBuffer[] {
  const w = v.weight;
  const arrays = [w.counts, w.quantizedCounts, w.channelMin, w.channelMax, w.gridPoints, v.activation?.counts];
  return arrays.filter((a) => a !== undefined).map((a) => a.buffer as ArrayBuffer);
}

interface CurrentModel {
  info: LoadedModel;
  bytes: Uint8Array;
  spec: ModelSpec;
  /** a quantized model: the float network underneath, what the instant views show */
  skeleton?: Uint8Array;
}

/** The quantized model loaded last: kept when its float parent is loaded after it. */
interface ImportedFile {
  sha256: string;
  bytes: Uint8Array;
  spec: ModelSpec;
  model: ImportedModel;
  /** paired with a parent, by the parent's sha256 */
  pairs: Map<string, ImportedPair>;
  /** its last evaluation as it is, by data split (compareWithParent reuses its predictions) */
  asIs?: { split: string; dataset: Dataset; outcome: AsIsOutcome };
}

/** What decides a config's images: everything but the model it names. */
const splitKey = (c: ExperimentConfig) => JSON.stringify({ ...c, model: '' });

export function createQuantApi(overrides: Partial<QuantApiDeps> = {}): QuantApi {
  const deps: QuantApiDeps = {
    storage: overrides.storage ?? getStorage(),
    fetch: overrides.fetch ?? ((...a) => fetch(...a)),
    createEngine:
      overrides.createEngine ??
      (async (pref) => (await import('../src/lib/engine/browser.ts')).createBrowserEngine(pref)),
    cropper: overrides.cropper ?? (() => sharedDecodePool()),
    runPipeline: overrides.runPipeline ?? (async () => (await import('../src/lib/pipeline/run.ts')).runPipeline),
    env:
      overrides.env ??
      (async () => {
        const e = await (await import('../src/lib/engine/browser.ts')).engineEnvironment();
        return { webgpu: e.gpu, threads: e.threads, crossOriginIsolated: e.crossOriginIsolated };
      }),
    base: overrides.base ?? (globalThis.location?.href || 'http://localhost/'),
  };
  let controller: AbortController | undefined;
  let model: CurrentModel | undefined;
  let imported: ImportedFile | undefined;
  let dataset: Dataset | undefined;
  let sharedData: boolean | undefined;
  /** the last analysed run of one config: what layerDetail answers from */
  let analyzed: { hash: string; context: LayerDetailContext } | undefined;
  /** deployable exports of the last run, by configHash (zips are small next to the model) */
  let exports = new Map<string, Result<ExportedRun>>();

  /** A new AbortController for the next piece of work. */
  function begin(): AbortSignal {
    controller = new AbortController();
    // Any new load or run makes the kept analysis stale; let its graph and crops go.
    analyzed = undefined;
    return controller.signal;
  }

  const fetcher: Fetcher = { fetch: (...a) => deps.fetch(...a), base: deps.base };

  /** the site (configureSite): its root, policy and mirrors; the registry's files come through it */
  let site: { root: string; policy?: string; mirrors?: Promise<{ mirrors: string[]; notices: string[] }> } = {
    root: new URL('./', deps.base).href,
  };
  let downloads: RegistryDownloads | undefined;
  /** the registry image set loaded as the data set, if it is one: a run fetches its split first */
  let registryImages: RegistryImages | undefined;
  const violations = typeof self !== 'undefined' && 'addEventListener' in self ? violationLog(self) : {};

  function siteMirrors() {
    site.mirrors ??= loadSiteConfig(deps.fetch, site.root).then(
      (r) => ({ mirrors: r.mirrors, notices: r.notice ? [r.notice] : [] }),
      (e: unknown) => ({ mirrors: [], notices: [toErrorInfo(e).message] }),
    );
    return site.mirrors;
  }

  /** The downloader of the registry's files: the site's mirrors first, verified into IndexedDB. */
  async function registry(): Promise<RegistryDownloads> {
    if (downloads) return downloads;
    const { mirrors } = await siteMirrors();
    const env: DownloadEnv = {
      fetch: (...a) => deps.fetch(...a),
      pageUrl: site.root,
      online: () => globalThis.navigator?.onLine ?? true,
      policyAllows: connectCheck(site.policy, site.root),
      ...violations,
    };
    downloads = registryDownloads({
      env,
      imageStore: deps.storage.byteStore('image'),
      modelStore: deps.storage.byteStore('model'),
      mirrors,
    });
    return downloads;
  }

  // instant views: weight view, layer graph, background estimate (workers/instant.ts)
  const { quiesce: quiesceEstimate, ...instant } = instantMethods({
    model: () =>
      model && {
        sha256: model.info.sha256,
        bytes: model.skeleton ?? model.bytes,
        spec: model.spec,
        quantized: !!model.info.quantized,
      },
    dataset: () => dataset,
    createEngine: (pref) => deps.createEngine(pref),
    cropStore: () => deps.storage.cropStore(),
    cropper: () => deps.cropper(),
    meta: deps.storage,
  });

  async function hasSharedData(): Promise<boolean> {
    if (sharedData !== undefined) return sharedData;
    try {
      const r = await deps.fetch(new URL(`${SHARED_DATA}imagenet-sample/manifest.json`, deps.base).href, {
        method: 'HEAD',
      });
      sharedData = r.ok && (r.headers.get('content-type') ?? '').includes('json');
    } catch {
      sharedData = false;
    }
    return sharedData;
  }

  /** Adopt (models/adopt.ts), then cache and keep: the one path all model sources end in. */
  /** Model loads started so far: only the latest one may become the loaded model. */
  let modelLoads = 0;

  /**
   * Reads and checks a model's bytes (and caches them); the caller commits it with
   * `commitModel` once it knows no later load has started meanwhile.
   */
  async function adopt(
    bytes: Uint8Array,
    name: string,
    /** fromCache: read from this browser's cache; stored: already kept there by the downloader */
    opts: AdoptOptions & { url?: string; fromCache: boolean; stored?: boolean },
  ): Promise<CurrentModel & { read?: ImportedModel }> {
    const { info: adopted, spec, graph } = await adoptModel(bytes, name, opts);
    const info: LoadedModel = { ...adopted, fromCache: opts.fromCache };
    let skeleton: Uint8Array | undefined;
    let read: ImportedModel | undefined;
    if (isQuantizedGraph(graph)) {
      // a quantized file: read its quantization
      read = readImported(graph);
      info.quantized = quantizedInfo(read);
      if (read.unsupported.length === 0) skeleton = serializeModel(read.skeleton);
    }
    if (!opts.fromCache && !opts.stored) {
      // Caching is a convenience: a full quota must not stop the user from using the model.
      await deps.storage.putModel({ sha256: info.sha256, bytes, name, url: opts.url }).catch(() => undefined);
    }
    return { info, bytes, spec, skeleton, read };
  }

  /**
   * The adopted model becomes the loaded one, unless a later load started while it was read:
   * a link's silent restore must not replace the file the student opened meanwhile.
   */
  function commitModel(load: number, m: CurrentModel & { read?: ImportedModel }): LoadedModel {
    if (load !== modelLoads)
      throw new QpError('CANCELLED', `"${m.info.name}" was not opened: another model was opened while it loaded.`);
    const { read, ...current } = m;
    // a quantized file stays here when its parent is loaded
    if (read && imported?.sha256 !== m.info.sha256)
      imported = { sha256: m.info.sha256, bytes: m.bytes, spec: m.spec, model: read, pairs: new Map() };
    model = current;
    return m.info;
  }

  /** What the pipeline runs `m` with: its bytes and spec, the images, this browser's crop cache and decoders. */
  function runInputs(
    engine: Engine,
    m: { bytes: Uint8Array; spec: ModelSpec },
    ds: Dataset,
    cropStore: RunInputs['cropStore'] = deps.storage.cropStore(),
  ): RunInputs {
    return {
      engine,
      modelBytes: m.bytes,
      model: m.spec,
      dataset: ds,
      cropStore,
      cropper: deps.cropper(),
    };
  }

  /** Fire and forget: a comlink callback returns a promise we must not wait on. */
  const report = (onProgress?: (p: Progress) => void) => (p: Progress) =>
    void Promise.resolve(onProgress?.(p)).catch(() => undefined);

  /** A registry image set: the files of the configs' splits, fetched and verified, with progress. */
  async function fetchSplits(configs: ExperimentConfig[], signal: AbortSignal, onProgress?: (p: Progress) => void) {
    const images = registryImages;
    if (!images) return;
    const files = [...new Map(configs.flatMap((c) => images.filesFor(c)).map((f) => [f.sha256, f])).values()];
    await images.prefetch(files, {
      signal,
      onProgress: (p) =>
        report(onProgress)({
          stage: 'download',
          done: p.files,
          total: p.totalFiles,
          message: `Downloading images: ${progressText(p, 'images')}`,
        }),
    });
  }

  /** The quantized file paired with the float model `parent` (once per parent). */
  function pairFor(file: ImportedFile, parent: CurrentModel): ImportedPair {
    let pair = file.pairs.get(parent.info.sha256);
    if (!pair) {
      pair = pairWithParent(file.model, parseModel(parent.bytes), file.sha256);
      file.pairs.set(parent.info.sha256, pair);
    }
    return pair;
  }

  /** The quantized file evaluated as it is on `config`'s split (kept: a comparison on the same split reuses it). */
  async function asIsOf(
    file: ImportedFile,
    config: ExperimentConfig,
    engine: Engine,
    ds: Dataset,
    signal: AbortSignal,
    onProgress?: (p: Progress) => void,
  ): Promise<AsIsOutcome> {
    const split = splitKey(config);
    if (file.asIs?.split === split && file.asIs.dataset === ds) return file.asIs.outcome;
    const { runAsIs } = await import('../src/lib/pipeline/imported.ts');
    const outcome = await runAsIs(
      runInputs(engine, file, ds),
      { ...config, model: file.spec.id },
      { signal, onProgress: report(onProgress), evalBatch: BROWSER_EVAL_BATCH },
    );
    throwIfAborted(signal);
    file.asIs = { split, dataset: ds, outcome };
    return outcome;
  }

  /** A model's bytes from where `src` says, adopted but not yet the loaded model. */
  async function readModelSource(
    src: ModelSource,
    signal: AbortSignal,
    onProgress?: (p: DownloadProgress) => void,
  ): Promise<CurrentModel & { read?: ImportedModel }> {
    switch (src.kind) {
      case 'bytes':
        return adopt(src.bytes, src.name, { fromCache: false, expectSha256: src.expectSha256 });
      case 'cached': {
        const m = await deps.storage.getModel(src.sha256);
        if (!m) {
          throw new QpError(
            'FILE_NOT_FOUND',
            `The model with sha256 ${src.sha256.slice(0, 12)}… is not in this browser's cache. Open the same .onnx file again (the link only names it by its hash).`,
          );
        }
        return adopt(m.bytes, m.name, { fromCache: true, sha256: m.sha256 });
      }
      case 'registry': {
        const entry = getModelEntry(src.id);
        // any known copy already in this browser serves "Try it"; a link's exact file only itself
        for (const sha of src.sha256 ? [src.sha256] : knownHashes(entry)) {
          const cached = await deps.storage.getModel(sha);
          if (cached) return adopt(cached.bytes, entry.label, { fromCache: true, sha256: cached.sha256 });
        }
        const f = await (
          await registry()
        ).modelFile(src.id, {
          sha256: src.sha256,
          signal,
          onBytes: (loaded) => onProgress?.({ loaded }),
        });
        // the downloader verified and stored the file
        return adopt(f.bytes, entry.label, { sha256: f.sha256, url: f.url, fromCache: f.cached, stored: true });
      }
      case 'url': {
        const name =
          src.name ?? decodeURIComponent(new URL(src.url, deps.base).pathname.split('/').pop() || 'model.onnx');
        return fetchModel(src.url, name, signal, src.expect, onProgress, src.expectSha256);
      }
    }
  }

  async function fetchModel(
    url: string,
    name: string,
    signal: AbortSignal,
    expect: { bytes: number; sha256: string } | undefined,
    onProgress?: (p: DownloadProgress) => void,
    expectSha256?: string,
  ) {
    const bytes = await downloadModel(fetcher, url, name, signal, expect?.bytes, onProgress);
    return adopt(bytes, name, { url, expect, expectSha256, fromCache: false });
  }

  /**
   * What a run or a deployment check needs first: the loaded model and images (matching the
   * configs), the background estimate out of the way (one engine user at a time), and the
   * files of the configs' splits when the images come from the registry.
   */
  async function readyToRun(
    configs: ExperimentConfig[],
    signal: AbortSignal,
    onProgress: (p: Progress) => unknown,
  ): Promise<{ model: CurrentModel; dataset: Dataset; scheme: ImportedPair['scheme'] | undefined }> {
    if (!model) throw new QpError('ARG_INVALID', 'No model is loaded. Pick a model before running.');
    if (model.info.quantized)
      throw new QpError(
        'ARG_INVALID',
        `"${model.info.name}" is already quantized, so settings do not apply to it. Use "Evaluate as it is" to measure it, or open its float parent to try settings on the parent.`,
      );
    if (!dataset) throw new QpError('ARG_INVALID', 'No images are loaded. Pick a data source before running.');
    for (const c of configs) {
      if (c.model !== model.info.id) {
        throw new QpError(
          'ARG_INVALID',
          `The settings name model "${c.model}", but the loaded model is "${model.info.id}". Load that model first.`,
        );
      }
    }
    // a config re-simulating an imported scheme needs that quantized file, opened before this parent
    const named = configs.find((c) => c.importedScheme !== NO_IMPORTED_SCHEME)?.importedScheme;
    if (named && (!imported || `sha256:${imported.sha256}` !== named))
      throw new QpError(
        'ARG_INVALID',
        `The settings re-simulate the quantized model ${named.slice(0, 19)}…, which is not open in this tab. Open that quantized file, then its float parent, and run again (or set the imported scheme to "none").`,
      );
    const scheme = named && imported ? pairFor(imported, model).scheme : undefined;
    const ready = { model, dataset, scheme };
    // a background estimate gives way to the full run (one engine user at a time)
    await quiesceEstimate();
    // a registry image set: the files of the runs' splits come first, verified, with progress
    await fetchSplits(configs, signal, onProgress);
    return ready;
  }

  const api: QuantApi = {
    env: () => asResult(async () => ({ ...(await deps.env()), sharedData: await hasSharedData() })),

    configureSite: (info) =>
      asResult(async () => {
        site = { root: new URL('./', new URL(info.root, deps.base)).href, policy: info.policy };
        downloads = undefined;
        return siteMirrors();
      }),

    loadModel: (src: ModelSource, onProgress?: (p: DownloadProgress) => void): Promise<Result<LoadedModel>> =>
      asResult(async () => {
        const signal = begin();
        const load = ++modelLoads;
        return commitModel(load, await readModelSource(src, signal, onProgress));
      }),

    loadDataset: (src: DataSource): Promise<Result<DatasetInfo>> =>
      asResult(async () => {
        const signal = begin();
        registryImages = undefined;
        if (src.kind === 'registry') {
          registryImages = await (await registry()).openImages(src.id, () => controller?.signal);
        }
        const ds: FileDataset = registryImages
          ? registryImages.dataset
          : src.kind === 'files'
            ? await datasetFromPickedFiles(src.files, async () =>
                (await hasSharedData())
                  ? classIndexFromUrl(fetcher, `${SHARED_DATA}imagenet_class_index.json`, signal)
                  : undefined,
              )
            : src.kind === 'url'
              ? await datasetFromManifest(fetcher, src.baseUrl, signal, {
                  classIndexUrl: src.classIndexUrl,
                  imageSignal: () => controller?.signal,
                })
              : (() => {
                  throw new QpError('ARG_INVALID', 'Unknown image source.');
                })();
        dataset = ds;
        return {
          name: ds.name,
          images: ds.items.length,
          fingerprint: await fingerprintOf(ds),
          classes: ds.classes,
          ignored: ds.ignored,
          ignoredNames: ds.ignoredNames,
        };
      }),

    run: (
      configs: ExperimentConfig[],
      enginePref: EnginePref,
      onProgress?: (p: Progress) => void,
      opts?: RunRequestOptions,
    ): Promise<Result<RunOutcome>> =>
      asResult(async () => {
        const signal = begin();
        const { model, dataset, scheme } = await readyToRun(configs, signal, (p) => onProgress?.(p));
        const t0 = performance.now();
        let msToFirstBatch: number | undefined;
        const { engine, fallbackReason, laterFallback } = await deps.createEngine(enginePref);
        const cropStore = deps.storage.cropStore();
        const inputs: RunInputs = runInputs(engine, model, dataset, cropStore);
        const runOpts: RunOptions = {
          signal,
          // small batches, so a cancel soon reaches a batch boundary (docs/performance.md)
          evalBatch: BROWSER_EVAL_BATCH,
          onProgress: (p) => {
            if (
              msToFirstBatch === undefined &&
              (p.stage === 'fp32' || p.stage === 'calibrate' || p.stage === 'evaluate') &&
              p.done > 0
            ) {
              msToFirstBatch = performance.now() - t0;
            }
            // fire and forget: a comlink callback returns a promise we must not wait on
            void Promise.resolve(onProgress?.(p)).catch(() => undefined);
          },
        };
        exports = new Map();
        runOpts.onQuantized = async (q) => {
          const hash = await configHash(q.config);
          exports.set(
            hash,
            await asResult(async () => {
              const { exportRun, zipBundle } = await import('../src/lib/export/bundle.ts');
              const b = exportRun(q, hash);
              return { fileName: `${b.folder}.zip`, bytes: zipBundle(b), notes: b.notes, qdqError: b.qdqError };
            }),
          );
        };
        const analyze = opts?.analyze ? { images: analysisImages(opts.analyze.images) } : undefined;
        // the layer detail of an analysed run answers from its context, kept for the last config
        const keepContext = (r: ExperimentResult, context: LayerDetailContext) => {
          analyzed = { hash: r.configHash, context };
        };
        const results = await (
          await deps.runPipeline()
        )(configs, inputs, { ...runOpts, analyze, hooks: { keepContext, scheme } });
        // a cancel that came in after the last batch still wins: nothing is stored
        throwIfAborted(signal);
        // the last step has no batches of its own: one report opens it, so the time left covers it
        const finish = (done: number) =>
          runOpts.onProgress?.({ stage: 'finish', done, total: 1, message: 'Saving the result' });
        finish(0);
        const warnings: string[] = [];
        for (const r of results) {
          try {
            await deps.storage.putRun(r);
          } catch (e) {
            // another tab upgraded or holds the stored data: this tab must reload, so the run
            // ends with that sentence rather than a result shown as if it were kept
            if (e instanceof QpError && (e.code === 'STORAGE_OUTDATED' || e.code === 'STORAGE_BLOCKED')) throw e;
            warnings.push(`The result could not be saved in this browser: ${(e as Error).message}`);
            break;
          }
        }
        finish(1);
        // storage deleted or cleared while the app was open: it was re-created; say what was lost
        const lost = deps.storage.takeLossNotice?.();
        if (lost) warnings.push(lost);
        if (cropStore.quotaHit)
          warnings.push(
            'The browser storage is full, so some preprocessed images were not cached; the next run will decode them again.',
          );
        const reason = fallbackReason ?? laterFallback?.();
        return {
          results,
          engine: engine.description,
          engineKind: engine.kind === 'webgpu' ? 'webgpu' : 'wasm',
          fallbackReason: reason,
          warnings,
          msToFirstBatch,
        };
      }),

    checkDeployed: (configs, onProgress, opts) =>
      asResult(async () => {
        // unlike a run, a check leaves the last analysed run's context (and its exports) in place
        controller = new AbortController();
        const { signal } = controller;
        // fire and forget: a comlink callback returns a promise we must not wait on
        // the pipeline's stages each count from 0: the bar only moves forward
        let last = 0;
        const report = (p: DeployProgress) => {
          last = Math.max(last, p.done);
          void Promise.resolve(onProgress?.({ ...p, done: last })).catch(() => undefined);
        };
        const total = configs.length;
        const { model, dataset, scheme } = await readyToRun(configs, signal, (p) =>
          report({ done: 0, total, message: p.message }),
        );
        // the deployment runs on the CPU's integer kernels: onnxruntime-web's wasm engine, and
        // the simulation it is compared with runs on the same engine and the same images
        const { engine } = await deps.createEngine('wasm');
        const [{ deployRecord }, { simulatedTop1 }, runPipeline] = await Promise.all([
          import('../src/lib/export/deploy-record.ts'),
          import('../src/lib/export/verify.ts'),
          deps.runPipeline(),
        ]);
        const checks: DeployCheck[] = [];
        const label = (c: ExperimentConfig) => `${c.backend} W${c.wBits}A${c.aBits}`;
        const STEPS: Record<DeployStep, string> = {
          export: 'writing the integer model',
          evaluate: 'running it on the integer kernels',
          divergence: 'comparing layer by layer',
          arithmetic: 'recomputing one layer by hand',
          exact: 'the deploy-exact simulation',
          fusions: 'reading the fused kernels',
        };
        const results = await runPipeline(
          configs,
          {
            engine,
            modelBytes: model.bytes,
            model: model.spec,
            dataset,
            cropStore: deps.storage.cropStore(),
            cropper: deps.cropper(),
          },
          {
            signal,
            evalBatch: BROWSER_EVAL_BATCH,
            onProgress: (p) =>
              report({
                done: checks.length + 0.5 * (p.total ? p.done / p.total : 0),
                total,
                message: `${label(configs[Math.min(checks.length, total - 1)])}, simulation: ${p.message}`,
              }),
            hooks: { scheme },
            onQuantized: async (q) => {
              const base = {
                configHash: await configHash(q.config),
                config: q.config,
                simulated: { top1: simulatedTop1(q), top5: NaN },
                images: q.evaluation.labels.length,
                engine: engine.description,
              };
              try {
                const d = await deployRecord(engine, q, {
                  divergenceImages: opts?.divergenceImages ?? 4,
                  speedRounds: opts?.speedRounds ?? 3,
                  arithmetic: true,
                  batchSize: BROWSER_EVAL_BATCH,
                  signal,
                  onStep: (step) =>
                    report({ done: checks.length + 0.6, total, message: `${label(q.config)}: ${STEPS[step]}` }),
                });
                const { fusions: _, ...deployed } = d;
                checks.push({ ...base, deployed });
              } catch (e) {
                const info = toErrorInfo(e);
                if (info.code === 'CANCELLED') throw e;
                checks.push({ ...base, error: info });
              }
            },
          },
        );
        throwIfAborted(signal);
        // top-5 of the simulation comes with the pipeline's result of the same config
        for (const c of checks) {
          const r = results.find((x) => x.configHash === c.configHash);
          if (r) c.simulated = { top1: r.quant.top1, top5: r.quant.top5 };
        }
        report({ done: total, total, message: 'Done' });
        return checks;
      }),

    searchPrecision: (config, enginePref, request, onProgress) =>
      asResult(async (): Promise<SearchOutcome> => {
        // like a check, a search leaves the last analysed run's context (and its exports) in place
        controller = new AbortController();
        const { signal } = controller;
        // fire and forget: a comlink callback returns a promise we must not wait on
        const report = (p: SearchProgress) => void Promise.resolve(onProgress?.(p)).catch(() => undefined);
        const { model, dataset, scheme } = await readyToRun([config], signal, (p) =>
          report({ done: 0, total: 0, message: p.message }),
        );
        const { engine } = await deps.createEngine(enginePref);
        const { runSearch } = await import('../src/lib/search/session.ts');
        const o = await runSearch(runInputs(engine, model, dataset), config, request, {
          signal,
          scheme,
          evalBatch: BROWSER_EVAL_BATCH,
          onProgress: report,
        });
        throwIfAborted(signal);
        return { ...o, engine: engine.description };
      }),

    evaluateImported: (config, enginePref, onProgress) =>
      asResult(async (): Promise<AsIsResult> => {
        const signal = begin();
        const file = imported;
        if (!model || !file || !model.info.quantized || model.info.sha256 !== file.sha256)
          throw new QpError(
            'ARG_INVALID',
            'The loaded model is not a quantized one. Open a quantized ONNX file (QDQ or QOperator) to evaluate it as it is.',
          );
        if (!dataset) throw new QpError('ARG_INVALID', 'No images are loaded. Pick a data source first.');
        const ds = dataset;
        await quiesceEstimate();
        await fetchSplits([config], signal, onProgress);
        const { engine } = await deps.createEngine(enginePref);
        const o = await asIsOf(file, config, engine, ds, signal, onProgress);
        return { sha256: file.sha256, accuracy: o.accuracy, images: o.images, seconds: o.seconds };
      }),

    compareWithParent: (config, enginePref, onProgress, opts) =>
      asResult(async (): Promise<ImportedComparison> => {
        const signal = begin();
        const file = imported;
        if (!file)
          throw new QpError(
            'ARG_INVALID',
            'No quantized model was opened in this tab. Open the quantized ONNX file first, then its float parent.',
          );
        if (!model || model.info.quantized)
          throw new QpError(
            'ARG_INVALID',
            'The loaded model is the quantized one. Open its float parent (the FP32 .onnx it was made from) to compare them.',
          );
        const parent = model;
        // a parent that does not match says so before any image is read
        const pair = pairFor(file, parent);
        if (!dataset) throw new QpError('ARG_INVALID', 'No images are loaded. Pick a data source first.');
        const ds = dataset;
        await quiesceEstimate();
        const base = { ...config, model: parent.spec.id };
        await fetchSplits([base], signal, onProgress);
        const { engine } = await deps.createEngine(enginePref);
        const asIs = await asIsOf(file, base, engine, ds, signal, onProgress);
        const { runAgainstParent } = await import('../src/lib/pipeline/imported.ts');
        const o = await runAgainstParent(
          runInputs(engine, parent, ds),
          base,
          { bytes: file.bytes, imported: file.model, pair, asIs },
          {
            signal,
            onProgress: report(onProgress),
            evalBatch: BROWSER_EVAL_BATCH,
            analysisImages: analysisImages(opts?.images),
          },
        );
        throwIfAborted(signal);
        return {
          sha256: file.sha256,
          parent: { sha256: parent.info.sha256, id: parent.spec.id },
          matched: pair.match.layers.length,
          unmatchedImported: pair.match.unmatchedImported,
          unmatchedParent: pair.match.unmatchedParent,
          unmatchedActivations: pair.scheme.unmatched.activations,
          asIs: { sha256: file.sha256, accuracy: asIs.accuracy, images: asIs.images, seconds: asIs.seconds },
          fp32: o.fp32,
          agreement: o.agreement,
          resimulated: o.resimulated.quant,
          resimulatedAgreement: o.resimulatedAgreement,
          fields: { ...pair.scheme.fields, importedScheme: pair.scheme.id },
          comparison: o.comparison,
        };
      }),

    cancel: async () => {
      controller?.abort();
    },

    layerDetail: async (configHash, layer, opts) => {
      const r = await asResult(async () => {
        if (!analyzed || analyzed.hash !== configHash) {
          throw new QpError(
            'ARG_INVALID',
            'The histograms of this result are no longer in memory (they are kept only for the last run analysed in this tab). Run these settings again with the analysis on to see them.',
          );
        }
        const { layerDetail } = await import('../src/lib/analysis/detail.ts');
        return toDetailView(configHash, await layerDetail(analyzed.context, layer, opts));
      });
      return r.ok ? transfer(r, detailBuffers(r.value)) : r;
    },

    exportRun: async (hash) => {
      const r = exports.get(hash) ?? {
        ok: false as const,
        error: toErrorInfo(
          new QpError(
            'ARG_INVALID',
            'The quantized model of this result is no longer in memory (only the last run in this tab can be exported). Run these settings again, then download.',
          ),
        ),
      };
      exports.delete(hash); // the zip buffer is transferred away
      if (r.ok) exports.set(hash, { ok: true, value: { ...r.value, bytes: r.value.bytes.slice() } });
      return r.ok ? transfer(r, [r.value.bytes.buffer]) : r;
    },

    analyzedRun: () => asResult(async () => analyzed?.hash ?? null),
    firstConvWeights: () =>
      asResult(async () => {
        if (!model) throw new QpError('ARG_INVALID', 'No model is loaded yet. Choose or open a model first.');
        const t = (await import('../src/lib/intro/first-conv.ts')).firstConvWeights(model.bytes);
        return transfer(t, [t.values.buffer as ArrayBuffer]);
      }),

    listModels: () => asResult(() => deps.storage.listModels()),
    getRun: (hash) => asResult(async () => (await deps.storage.getRun(hash)) ?? null),
    listRuns: () => asResult(() => deps.storage.listRuns()),
    deleteRun: (hash) => asResult(() => deps.storage.deleteRun(hash)),
    cacheEstimate: () => asResult(() => deps.storage.estimate()),
    clearCache: () => asResult(() => deps.storage.clear(['models', 'crops'])),

    ...instant,
  };
  return api;
}
