/**
 * The one typed contract between the UI and the quantization worker (comlink).
 * Every method returns data: `Result<T>` with an ErrorInfo on failure (comlink would
 * lose error classes). Progress arrives through a comlink-proxied callback; `cancel()`
 * aborts the work in progress. Big buffers go in with `Comlink.transfer`.
 * Must not: contain logic; import Svelte, idb or ORT.
 */
import type { Result } from '../util/errors.ts';
import type { ExperimentConfig } from '../config/types.ts';
import type { ExperimentResult, Progress } from './results.ts';
import type { ActivationHistogram, WeightHistogram } from './analysis.ts';
import type { AccuracyEstimate, LayerGraphView, WeightView } from './instant.ts';
import type { DeployCheck, DeployCheckOptions, DeployProgress } from './deploy.ts';
import type { AsIsResult, ImportedComparison, QuantizedInfo } from './imported.ts';
import type { SearchOutcome, SearchProgress, SearchRequest } from './search.ts';

export type EnginePref = 'auto' | 'webgpu' | 'wasm';

export interface EnvInfo {
  webgpu: { available: boolean; adapter?: string; reason?: string };
  /** wasm threads ORT will use */
  threads: number;
  crossOriginIsolated: boolean;
  /** the dev/preview server serves ../shared/data under /shared-data/ */
  sharedData: boolean;
}

/** Where model bytes come from. */
export type ModelSource =
  /** bytes the user opened or dropped (transfer the buffer) */
  | { kind: 'bytes'; bytes: Uint8Array; name: string; expectSha256?: string }
  /** a URL; `expect` is checked when given (registry facts), `expectSha256` (a shared link's) too */
  | { kind: 'url'; url: string; name?: string; expect?: { bytes: number; sha256: string }; expectSha256?: string }
  /**
   * a registry model: any known copy of its weights (cached, else from the site's mirrors,
   * else its public URL), or with `sha256` (a link's) exactly that file
   */
  | { kind: 'registry'; id: string; sha256?: string }
  /** a model already in this browser's cache */
  | { kind: 'cached'; sha256: string };

export interface LoadedModel {
  /** config `model` value: the registry id when the bytes match it, else 'sha256:<hex>' */
  id: string;
  name: string;
  sha256: string;
  size: number;
  /**
   * 'match': the sha256 is one of the registry's downloads; 'copy': the registry lists
   * this sha256 as another file of the same weights (not the file it downloads);
   * 'unknown': nothing to compare with
   */
  verified: 'match' | 'copy' | 'unknown';
  fromCache: boolean;
  inputName: string;
  outputName: string;
  classes: number;
  /**
   * set when the file is quantized (QDQ or QOperator, made by onnxruntime's quantizer or
   * exported here): how each layer is quantized. Such a model is evaluated as it is
   * (evaluateImported), not run with settings; the worker keeps it when a float model (its
   * parent) is loaded after it, for compareWithParent and for configs naming its scheme.
   */
  quantized?: QuantizedInfo;
}

export type DataSource =
  /** files the user picked or dropped, named by WordNet id; a class index JSON may be among them */
  | { kind: 'files'; files: File[] }
  /** a folder URL with manifest.json {files: string[]} (and imagenet_class_index.json, optional) */
  | { kind: 'url'; baseUrl: string; classIndexUrl?: string }
  /** a registry image set (data/image-sets.ts): files from the site's mirrors, else the public sources, verified */
  | { kind: 'registry'; id: string };

/** What the page knows of the site the worker serves: where it is, and its policy. */
export interface SiteInfo {
  /** the site's root URL (where index.html and an optional site.json are) */
  root: string;
  /** the page's Content-Security-Policy as the <meta> tag carries it, if any */
  policy?: string;
}

export interface DatasetInfo {
  name: string;
  images: number;
  /** data/fingerprint.ts: "<images>-<hash of sorted names and labels>", what a link names */
  fingerprint: string;
  classes: number;
  ignored: number;
  ignoredNames: string[];
}

export interface DownloadProgress {
  loaded: number;
  /** bytes expected, when known */
  total?: number;
}

export interface RunOutcome {
  results: ExperimentResult[];
  /** the engine actually used (description) */
  engine: string;
  engineKind: 'wasm' | 'webgpu';
  /** why WebGPU was not used although asked for (full sentence) */
  fallbackReason?: string;
  /** things worth telling the user that did not stop the run (full sentences) */
  warnings: string[];
  /** performance.now() ms from run start to the first evaluated batch's progress */
  msToFirstBatch?: number;
}

/** Options of one `run` call that are not part of the config (they do not change its numbers). */
export interface RunRequestOptions {
  /**
   * Also analyse why accuracy drops (per-layer error, BN statistic drift, weight-only vs
   * activation-only accuracy) on the first `images` evaluation images (default 64). With
   * one config, the worker keeps what `layerDetail` needs until the next run or load.
   */
  analyze?: { images?: number };
}

/**
 * LayerDetail (src/lib/analysis/detail.ts) as it crosses the worker boundary: the long
 * arrays are typed arrays, transferred rather than cloned. Counts stay Float64 (a bin of
 * a calibration histogram may hold more than 2^24 values); weights are float32 anyway.
 */
export interface LayerDetailView {
  /** the configHash of the analysed run it belongs to */
  configHash: string;
  name: string;
  weight: Omit<WeightHistogram, 'counts' | 'quantizedCounts' | 'channelMin' | 'channelMax' | 'gridPoints'> & {
    counts: Float64Array;
    quantizedCounts: Float64Array;
    channelMin: Float32Array;
    channelMax: Float32Array;
    gridPoints?: Float64Array;
  };
  activation: (Omit<ActivationHistogram, 'counts'> & { counts: Float64Array }) | null;
}

/** A run's deployable export as one zip (src/lib/export), for the "Download deployable model" action. */
export interface ExportedRun {
  /** suggested file name, e.g. `tensorrt-w8a8-1a2b3c4d.zip` */
  fileName: string;
  /** the zip (transferred) */
  bytes: Uint8Array;
  /** what the user should know (e.g. why model.qdq.onnx is missing and only ranges were written) */
  notes: string[];
  /** set when the QDQ model could not be written (the zip still holds the range files) */
  qdqError?: import('../util/errors.ts').ErrorInfo;
}

export interface CacheEstimate {
  /** bytes used by this origin (navigator.storage.estimate) or by our stores (summed) */
  usage: number;
  /** bytes available to this origin, when the browser says */
  quota?: number;
  models: number;
  modelBytes: number;
  crops: number;
  cropBytes: number;
  runs: number;
  source: 'navigator.storage' | 'summed';
}

/** One weight tensor of the loaded model (the introduction's widget works on it). */
export interface TensorSample {
  /** the convolution node's name */
  layer: string;
  /** the weight initializer's name */
  name: string;
  dims: number[];
  values: Float32Array;
}

export interface QuantApi {
  env(): Promise<Result<EnvInfo>>;
  /** Tell the worker about the site (call once, before loading from the registry). */
  configureSite(site: SiteInfo): Promise<Result<{ mirrors: string[]; notices: string[] }>>;
  loadModel(src: ModelSource, onProgress?: (p: DownloadProgress) => void): Promise<Result<LoadedModel>>;
  loadDataset(src: DataSource, onProgress?: (p: DownloadProgress) => void): Promise<Result<DatasetInfo>>;
  /**
   * Runs configs on the loaded model and dataset; stores each result by config hash.
   * With `opts.analyze` each result carries `layers` and `analysis`.
   */
  run(
    configs: ExperimentConfig[],
    engine: EnginePref,
    onProgress?: (p: Progress) => void,
    opts?: RunRequestOptions,
  ): Promise<Result<RunOutcome>>;
  /**
   * Histogram data of one layer of the last analysed run (one config, this worker's
   * lifetime). ARG_INVALID when `configHash` is not that run (e.g. a stored result from
   * an earlier visit, or another run came since): run the analysis again.
   */
  layerDetail(
    configHash: string,
    layer: string,
    opts?: { bins?: number; sampleImages?: number },
  ): Promise<Result<LayerDetailView>>;
  /**
   * The deployable export (QDQ ONNX + range files, zipped) of a result computed by this
   * worker since the page loaded (its last run). ARG_INVALID for other results: run them again.
   */
  exportRun(configHash: string): Promise<Result<ExportedRun>>;
  /**
   * "Check on integer kernels": runs each config again on the wasm engine and its integer
   * export (model.int8.onnx) with onnxruntime's QDQ fusions on, on the same evaluation
   * images; per config the simulated and deployed accuracy, their agreement, the first
   * diverging layer and the speed against FP32. A config that cannot be deployed gets
   * `error` and the others go on. Cancelled by `cancel()`.
   */
  checkDeployed(
    configs: ExperimentConfig[],
    onProgress?: (p: DeployProgress) => void,
    opts?: DeployCheckOptions,
  ): Promise<Result<DeployCheck[]>>;
  /** configHash of the run whose layer details are available, if any. */
  analyzedRun(): Promise<Result<string | null>>;
  /** The loaded model's first convolution weights (BN folded): the introduction's example tensor. */
  firstConvWeights(): Promise<Result<TensorSample>>;
  /** Aborts the model download, dataset load or run in progress (it returns CANCELLED). */
  cancel(): Promise<void>;
  listModels(): Promise<Result<{ sha256: string; name: string; size: number; url?: string; addedAt: number }[]>>;
  getRun(configHash: string): Promise<Result<ExperimentResult | null>>;
  listRuns(): Promise<Result<ExperimentResult[]>>;
  deleteRun(configHash: string): Promise<Result<void>>;
  cacheEstimate(): Promise<Result<CacheEstimate>>;
  clearCache(): Promise<Result<void>>;
  /**
   * The weight side of `config` from the loaded model's weights alone (no Run): per-layer
   * weight SQNR, channel ranges, vanished channels, model size; `opts.layer` adds that
   * layer's weight histogram with its quantization grid.
   */
  weightView(config: ExperimentConfig, opts?: { layer?: string; bins?: number }): Promise<Result<WeightView>>;
  /** The loaded model's weighted layers and residual joins as a graph, with readable names. */
  layerGraph(foldBn?: boolean): Promise<Result<LayerGraphView>>;
  /**
   * A quick top-1 / agreement estimate of `config` on a small fixed subset of its evaluation
   * images, reusing calibration statistics kept from earlier estimates; a newer call cancels
   * an older one (it returns CANCELLED). Independent of `run` and `cancel`.
   */
  estimate(config: ExperimentConfig, engine: EnginePref, opts?: { images?: number }): Promise<Result<AccuracyEstimate>>;
  /** Cancels the estimate in progress, if any. */
  cancelEstimate(): Promise<void>;
  /**
   * The quantized model loaded (LoadedModel.quantized) evaluated as it is, its own bytes in
   * one engine session, on the evaluation images of `config`'s data split. ARG_INVALID when
   * the loaded model is not quantized; MODEL_UNSUPPORTED when the engine cannot run it.
   * Cancelled by `cancel()`.
   */
  evaluateImported(
    config: ExperimentConfig,
    engine: EnginePref,
    onProgress?: (p: Progress) => void,
  ): Promise<Result<AsIsResult>>;
  /**
   * The quantized model opened last compared with the float model loaded now (its parent):
   * layers matched by topology, the file as it is against the parent's FP32 outputs
   * (agreement), the imported scheme re-simulated on the parent, per-layer comparison on the
   * first `opts.images` evaluation images (default 64). ARG_INVALID without a quantized file
   * or with a quantized model loaded; MODEL_UNSUPPORTED when the two do not match or the
   * file holds ops the reader does not understand. Cancelled by `cancel()`.
   */
  compareWithParent(
    config: ExperimentConfig,
    engine: EnginePref,
    onProgress?: (p: Progress) => void,
    opts?: { images?: number },
  ): Promise<Result<ImportedComparison>>;
  /**
   * The accuracy-aware search from `config` (the fewest layers kept at higher precision for
   * a top-1 drop of at most `request.maxDrop` points, src/lib/search/accuracy-control.ts)
   * and, with `request.paretoBits`, the size-versus-top-1 front over those per-layer weight
   * bits (search/pareto.ts), on the loaded float model and images. Progress counts
   * evaluations; cancelled by `cancel()`. CONFIG_INVALID for a config with AdaRound/GPTQ.
   */
  searchPrecision(
    config: ExperimentConfig,
    engine: EnginePref,
    request: SearchRequest,
    onProgress?: (p: SearchProgress) => void,
  ): Promise<Result<SearchOutcome>>;
  /**
   * Called at a change, before the debounce ends: does what the estimate of `config` can do
   * ahead (quantize its weights, when calibration statistics are in memory), so the estimate
   * starts later with less to do. Resolves true when it did.
   */
  prepareEstimate(config: ExperimentConfig, opts?: { images?: number }): Promise<Result<boolean>>;
}
