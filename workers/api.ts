/**
 * The quantization worker's API as a plain object (QuantApi): loads model bytes and
 * images, runs the shared pipeline (`runExperiments`) on the browser engine with an
 * IndexedDB crop cache, and stores results by config hash. `quant.worker.ts` only
 * exposes it; tests call `createQuantApi()` directly, without a worker.
 *
 * Every method returns `Result<T>`; nothing throws across the boundary. One piece of
 * work at a time: a new load or run cancels nothing by itself, `cancel()` does.
 * An analysed run of one config (`analyzeExperiment`) leaves its analysis context here
 * (graph, quantizers, calibration crops: tens of MB) so `layerDetail` answers without
 * re-running anything; the next run or model/data load drops it.
 * Must not: hold UI state, import Svelte, or re-implement pipeline logic (it only
 * gathers inputs for `runExperiments` / `analyzeExperiment`).
 */
import { transfer } from 'comlink';
import { asResult, QpError, throwIfAborted, type Result } from '../src/lib/protocol/errors.ts';
import type {
  DataSource,
  DatasetInfo,
  DownloadProgress,
  EnginePref,
  EnvInfo,
  LayerDetailView,
  LoadedModel,
  ModelSource,
  QuantApi,
  RunOutcome,
  RunRequestOptions,
} from '../src/lib/protocol/api.ts';
import type { AnalyzedExperiment, LayerDetail } from '../src/lib/analysis/index.ts';
import type { ExperimentConfig } from '../src/lib/protocol/config.ts';
import type { Dataset } from '../src/lib/data/types.ts';
import type { ExperimentResult, ModelSpec, Progress, RunExperiments, RunInputs, RunOptions } from '../src/lib/experiment/types.ts';
import { datasetFromFiles, loadClassIndex, type NamedFile } from '../src/lib/data/dataset.ts';
import { TORCHVISION_SPEC } from '../src/lib/data/preprocess.ts';
import { findModelBySha256, getModelEntry, knownHashes, toModelSpec } from '../src/lib/models/registry.ts';
import { validateClassifier } from '../src/lib/models/validate.ts';
import { parseModel } from '../src/lib/onnx/model.ts';
import { QpStorage, getStorage } from '../src/lib/storage/db.ts';
import type { BrowserEngine } from '../src/lib/engine/browser.ts';

export interface QuantApiDeps {
  storage: QpStorage;
  fetch: typeof fetch;
  createEngine: (pref: EnginePref) => Promise<BrowserEngine & { laterFallback?: () => string | undefined }>;
  runExperiments: () => Promise<RunExperiments>;
  /** one config with analysis, keeping the context for layerDetail */
  analyzeExperiment: () => Promise<(config: ExperimentConfig, inputs: RunInputs, opts: RunOptions) => Promise<AnalyzedExperiment>>;
  env: () => Promise<Omit<EnvInfo, 'sharedData'>>;
  /** base URL that relative URLs resolve against (the page's origin in a worker) */
  base: string;
}

/** URL of the dev server's copy of ../shared/data (absent in production builds). */
export const SHARED_DATA = '/shared-data/';

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Cheap checks on the first bytes before parsing: an empty file, an HTML page (a dev
 * server answers a missing file with index.html and status 200), or something that
 * cannot start an ONNX ModelProto (field 1 ir_version, varint: byte 0x08).
 */
export function sniffOnnx(bytes: Uint8Array, name: string): void {
  if (bytes.byteLength === 0) throw new QpError('MODEL_EMPTY', `The model file "${name}" is empty (0 bytes). Pick the .onnx file itself.`);
  const head = new TextDecoder().decode(bytes.subarray(0, 256)).trimStart().toLowerCase();
  if (head.startsWith('<!doctype html') || head.startsWith('<html') || head.startsWith('<')) {
    throw new QpError(
      'MODEL_NOT_ONNX',
      `"${name}" is a web page, not an ONNX model: the server answered with HTML (often its fallback page for a file that does not exist). Check the URL or file name.`,
    );
  }
  if (head.startsWith('version https://git-lfs')) {
    throw new QpError('MODEL_NOT_ONNX', `"${name}" is a Git LFS pointer, not the model itself. Download the real file (git lfs pull, or the "resolve" URL).`);
  }
  if (bytes[0] !== 0x08 && bytes[0] !== 0x0a && bytes[0] !== 0x12 && bytes[0] !== 0x1a && bytes[0] !== 0x3a && bytes[0] !== 0x42) {
    throw new QpError('MODEL_NOT_ONNX', `"${name}" does not look like an ONNX model (it starts with byte 0x${bytes[0].toString(16).padStart(2, '0')}). Pick an .onnx file.`);
  }
}

async function readBody(res: Response, signal: AbortSignal, total: number | undefined, onProgress?: (p: DownloadProgress) => void): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  let lastReport = 0;
  for (;;) {
    throwIfAborted(signal);
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.byteLength;
    const now = performance.now();
    if (onProgress && now - lastReport > 100) {
      lastReport = now;
      onProgress({ loaded, total });
    }
  }
  const out = new Uint8Array(loaded);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.byteLength;
  }
  onProgress?.({ loaded, total });
  return out;
}

/** Analysis images asked for: a whole number from 1 to 10,000 (default 64). */
function analysisImages(n: number | undefined): number {
  if (n === undefined) return 64;
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new QpError('ARG_INVALID', `The number of analysis images must be a whole number from 1 to 10,000, got ${n}.`);
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
}

export function createQuantApi(overrides: Partial<QuantApiDeps> = {}): QuantApi {
  const deps: QuantApiDeps = {
    storage: overrides.storage ?? getStorage(),
    fetch: overrides.fetch ?? ((...a) => fetch(...a)),
    createEngine:
      overrides.createEngine ?? (async (pref) => (await import('../src/lib/engine/browser.ts')).createBrowserEngine(pref)),
    runExperiments: overrides.runExperiments ?? (async () => (await import('../src/lib/experiment/run.ts')).runExperiments),
    analyzeExperiment: overrides.analyzeExperiment ?? (async () => (await import('../src/lib/analysis/experiment.ts')).analyzeExperiment),
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
  let dataset: Dataset | undefined;
  let sharedData: boolean | undefined;
  /** the last analysed run of one config: what layerDetail answers from */
  let analyzed: { hash: string; run: AnalyzedExperiment } | undefined;

  const abs = (u: string) => new URL(u, deps.base).href;

  /** A new AbortController for the next piece of work. */
  function begin(): AbortSignal {
    controller = new AbortController();
    // Any new load or run makes the kept analysis stale; let its graph and crops go.
    analyzed = undefined;
    return controller.signal;
  }

  async function get(url: string, signal: AbortSignal, what: string, code: 'MODEL_DOWNLOAD_FAILED' | 'DATA_NOT_FOUND'): Promise<Response> {
    let res: Response;
    try {
      res = await deps.fetch(abs(url), { signal });
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      throw new QpError(code, `Downloading ${what} from ${url} failed: ${(e as Error).message}. Check the address and your connection (the server must allow cross-origin requests).`);
    }
    if (!res.ok) throw new QpError(code, `Downloading ${what} from ${url} failed: the server answered ${res.status} ${res.statusText}.`);
    return res;
  }

  async function hasSharedData(): Promise<boolean> {
    if (sharedData !== undefined) return sharedData;
    try {
      const r = await deps.fetch(abs(`${SHARED_DATA}imagenet-sample/manifest.json`), { method: 'HEAD' });
      sharedData = r.ok && (r.headers.get('content-type') ?? '').includes('json');
    } catch {
      sharedData = false;
    }
    return sharedData;
  }

  /** Sniff, hash, validate, cache; the one path all model sources end in. */
  async function adopt(
    bytes: Uint8Array,
    name: string,
    opts: { url?: string; expect?: { bytes: number; sha256: string }; fromCache: boolean; sha256?: string },
  ): Promise<LoadedModel> {
    sniffOnnx(bytes, name);
    const sha256 = opts.sha256 ?? (await sha256Hex(bytes));
    if (opts.expect) {
      if (bytes.byteLength !== opts.expect.bytes || sha256 !== opts.expect.sha256) {
        throw new QpError(
          'MODEL_SHA_MISMATCH',
          `The downloaded file "${name}" is not the expected one: ${bytes.byteLength.toLocaleString('en')} bytes with sha256 ${sha256.slice(0, 12)}…, expected ${opts.expect.bytes.toLocaleString('en')} bytes with sha256 ${opts.expect.sha256.slice(0, 12)}…. The source may have changed; download it yourself and open it as a file.`,
        );
      }
    }
    const graph = parseModel(bytes);
    const cls = validateClassifier(graph);
    const entry = findModelBySha256(sha256);
    const id = entry ? entry.id : `sha256:${sha256}`;
    const spec: ModelSpec = entry
      ? toModelSpec(entry)
      : { id, label: name, preprocess: { ...TORCHVISION_SPEC, crop: cls.size, layout: cls.layout }, classes: cls.classes };
    const info: LoadedModel = {
      id,
      name: entry ? entry.label : name,
      sha256,
      size: bytes.byteLength,
      verified: entry ? 'match' : 'unknown',
      fromCache: opts.fromCache,
      inputName: cls.inputName,
      outputName: cls.outputName,
      classes: cls.classes,
    };
    if (!opts.fromCache) {
      // Caching is a convenience: a full quota must not stop the user from using the model.
      await deps.storage.putModel({ sha256, bytes, name, url: opts.url }).catch(() => undefined);
    }
    model = { info, bytes, spec };
    return info;
  }

  async function fetchModel(url: string, name: string, signal: AbortSignal, expect: { bytes: number; sha256: string } | undefined, onProgress?: (p: DownloadProgress) => void) {
    const res = await get(url, signal, `the model "${name}"`, 'MODEL_DOWNLOAD_FAILED');
    const type = res.headers.get('content-type') ?? '';
    if (type.includes('text/html')) {
      throw new QpError(
        'MODEL_NOT_ONNX',
        `${url} answered with a web page (content type ${type}), not an ONNX model: the file probably does not exist there. Check the address.`,
      );
    }
    const len = Number(res.headers.get('content-length')) || expect?.bytes;
    const bytes = await readBody(res, signal, len, onProgress);
    return adopt(bytes, name, { url, expect, fromCache: false });
  }

  async function loadClassIndexFrom(url: string, signal: AbortSignal): Promise<[string, string][]> {
    const res = await get(url, signal, 'the class index', 'DATA_NOT_FOUND');
    let json: unknown;
    try {
      json = await res.json();
    } catch {
      throw new QpError('LABELS_INVALID', `The class index at ${url} is not JSON. It should look like imagenet_class_index.json.`);
    }
    return loadClassIndex(json);
  }

  const api: QuantApi = {
    env: () =>
      asResult(async () => ({ ...(await deps.env()), sharedData: await hasSharedData() })),

    loadModel: (src: ModelSource, onProgress?: (p: DownloadProgress) => void): Promise<Result<LoadedModel>> =>
      asResult(async () => {
        const signal = begin();
        switch (src.kind) {
          case 'bytes':
            return adopt(src.bytes, src.name, { fromCache: false });
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
            const d = entry.downloads[src.download ?? 0] ?? entry.downloads[0];
            for (const sha of knownHashes(entry)) {
              const cached = await deps.storage.getModel(sha);
              if (cached) return adopt(cached.bytes, entry.label, { fromCache: true, sha256: cached.sha256 });
            }
            return fetchModel(d.url, entry.label, signal, { bytes: d.bytes, sha256: d.sha256 }, onProgress);
          }
          case 'url': {
            const name = src.name ?? decodeURIComponent(new URL(src.url, deps.base).pathname.split('/').pop() || 'model.onnx');
            return fetchModel(src.url, name, signal, src.expect, onProgress);
          }
        }
      }),

    loadDataset: (src: DataSource): Promise<Result<DatasetInfo>> =>
      asResult(async () => {
        const signal = begin();
        let files: NamedFile[];
        let classIndex: [string, string][];
        let name: string;
        if (src.kind === 'files') {
          const json = src.files.find((f) => f.name.toLowerCase().endsWith('.json'));
          const named = (f: File): NamedFile => ({
            name: (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name,
            read: async () => new Uint8Array(await f.arrayBuffer()),
          });
          files = src.files.filter((f) => f !== json).map(named);
          if (json) {
            try {
              classIndex = loadClassIndex(JSON.parse(await json.text()));
            } catch (e) {
              if (e instanceof QpError) throw e;
              throw new QpError('LABELS_INVALID', `"${json.name}" is not valid JSON, so it cannot be used as the class index.`);
            }
          } else if (await hasSharedData()) {
            classIndex = await loadClassIndexFrom(`${SHARED_DATA}imagenet_class_index.json`, signal);
          } else {
            throw new QpError(
              'LABELS_INVALID',
              'No class index was given. Add imagenet_class_index.json (the Keras class index) to the files you pick, so images can be labelled by their WordNet id.',
            );
          }
          name = 'files';
        } else {
          const base = src.baseUrl.endsWith('/') ? src.baseUrl : `${src.baseUrl}/`;
          const res = await get(`${base}manifest.json`, signal, 'the image list (manifest.json)', 'DATA_NOT_FOUND');
          let manifest: { files?: unknown; classIndex?: unknown };
          try {
            manifest = await res.json();
          } catch {
            throw new QpError('DATA_NOT_FOUND', `${base}manifest.json is not JSON. It must be {"files": ["n01440764.JPEG", …]}.`);
          }
          if (!Array.isArray(manifest.files) || !manifest.files.every((f) => typeof f === 'string')) {
            throw new QpError('DATA_NOT_FOUND', `${base}manifest.json has no "files" list of names. It must be {"files": ["n01440764.JPEG", …]}.`);
          }
          const ciUrl =
            src.classIndexUrl ?? (typeof manifest.classIndex === 'string' ? new URL(manifest.classIndex, abs(base)).href : `${base}imagenet_class_index.json`);
          classIndex = await loadClassIndexFrom(ciUrl, signal);
          files = (manifest.files as string[]).map((f) => ({
            name: f,
            read: async () => {
              const r = await get(`${base}${encodeURIComponent(f)}`, controller?.signal ?? signal, `image ${f}`, 'DATA_NOT_FOUND');
              if ((r.headers.get('content-type') ?? '').includes('text/html')) {
                throw new QpError('IMAGE_UNREADABLE', `${base}${f} answered with a web page, not an image.`);
              }
              return new Uint8Array(await r.arrayBuffer());
            },
          }));
          name = base;
        }
        const ds = datasetFromFiles(files, classIndex, name);
        dataset = ds;
        return { name: ds.name, images: ds.items.length, classes: ds.classes, ignored: ds.ignored, ignoredNames: ds.ignoredNames };
      }),

    run: (configs: ExperimentConfig[], enginePref: EnginePref, onProgress?: (p: Progress) => void, opts?: RunRequestOptions): Promise<Result<RunOutcome>> =>
      asResult(async () => {
        const signal = begin();
        if (!model) throw new QpError('ARG_INVALID', 'No model is loaded. Pick a model before running.');
        if (!dataset) throw new QpError('ARG_INVALID', 'No images are loaded. Pick a data source before running.');
        for (const c of configs) {
          if (c.model !== model.info.id) {
            throw new QpError('ARG_INVALID', `The settings name model "${c.model}", but the loaded model is "${model.info.id}". Load that model first.`);
          }
        }
        const t0 = performance.now();
        let msToFirstBatch: number | undefined;
        const { engine, fallbackReason, laterFallback } = await deps.createEngine(enginePref);
        const cropStore = deps.storage.cropStore();
        const inputs: RunInputs = { engine, modelBytes: model.bytes, model: model.spec, dataset, cropStore };
        const runOpts: RunOptions = {
          signal,
          onProgress: (p) => {
            if (msToFirstBatch === undefined && (p.stage === 'fp32' || p.stage === 'calibrate' || p.stage === 'evaluate') && p.done > 0) {
              msToFirstBatch = performance.now() - t0;
            }
            // fire and forget: a comlink callback returns a promise we must not wait on
            void Promise.resolve(onProgress?.(p)).catch(() => undefined);
          },
        };
        const analyze = opts?.analyze ? { images: analysisImages(opts.analyze.images) } : undefined;
        let results: ExperimentResult[];
        if (analyze && configs.length === 1) {
          const a = await (await deps.analyzeExperiment())(configs[0], inputs, { ...runOpts, analyze });
          results = [a.result];
          analyzed = { hash: a.result.configHash, run: a };
        } else {
          results = await (await deps.runExperiments())(configs, inputs, { ...runOpts, analyze });
        }
        const warnings: string[] = [];
        for (const r of results) {
          try {
            await deps.storage.putRun(r);
          } catch (e) {
            warnings.push(`The result could not be saved in this browser: ${(e as Error).message}`);
            break;
          }
        }
        if (cropStore.quotaHit) warnings.push('The browser storage is full, so some preprocessed images were not cached; the next run will decode them again.');
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
        return toDetailView(configHash, await analyzed.run.detail(layer, opts));
      });
      return r.ok ? transfer(r, detailBuffers(r.value)) : r;
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
  };
  return api;
}
