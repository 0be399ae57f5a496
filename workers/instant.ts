/**
 * The worker's instant views (QuantApi.weightView, layerGraph, estimate, cancelEstimate,
 * prepareEstimate),
 * kept apart from api.ts so the dispatcher only wires them in. Holds what makes them fast:
 * the FP32 weights of the loaded model per fold setting, and the prepared groups
 * (FP32 outputs, calibration statistics) of the background estimate. The estimate has its
 * own AbortController: a newer estimate cancels the older one, and neither touches a Run.
 * Must not: implement core logic (src/lib/analysis/weight-view.ts, src/lib/onnx/layer-graph.ts
 * and src/lib/pipeline/estimate.ts do).
 */
import { asResult, QpError, type Result } from '../src/lib/util/errors.ts';
import type { EnginePref } from '../src/lib/protocol/api.ts';
import type { ExperimentConfig } from '../src/lib/config/types.ts';
import type { AccuracyEstimate, LayerGraphView, WeightView } from '../src/lib/protocol/instant.ts';
import type { Dataset } from '../src/lib/data/types.ts';
import type { ModelSpec } from '../src/lib/experiment/types.ts';
import type { CropStore } from '../src/lib/data/types.ts';
import type { Cropper } from '../src/lib/data/crops.ts';
import type { BrowserEngine } from '../src/lib/engine/browser.ts';
import { parseModel } from '../src/lib/onnx/model.ts';
import { foldBatchNorm } from '../src/lib/onnx/fold-bn.ts';
import { layerGraph } from '../src/lib/onnx/layer-graph.ts';
import { prepareWeightModel, weightView, type WeightModel } from '../src/lib/analysis/weight-view.ts';
import type { EstimateCache, StatsStore, StoredGroupStats } from '../src/lib/pipeline/estimate.ts';

export interface InstantDeps {
  /**
   * the loaded model; for a quantized one `bytes` is the float network underneath (its
   * weights dequantized: what the layer graph and the weight view show) and `quantized` is set
   */
  model: () => { sha256: string; bytes: Uint8Array; spec: ModelSpec; quantized?: boolean } | undefined;
  dataset: () => Dataset | undefined;
  createEngine: (pref: EnginePref) => Promise<BrowserEngine>;
  cropStore: () => CropStore;
  /**
   * Decodes the images a Run has not cached yet (the decode pool, as a Run uses): without it
   * the estimate would decode in this worker, where the bundled JPEG decoder is never set up
   */
  cropper?: () => Cropper | undefined;
  /** IndexedDB settings store: the last estimate's statistics survive a reload there */
  meta?: { getMeta<T>(key: string): Promise<T | undefined>; setMeta(key: string, value: unknown): Promise<void> };
}

export interface InstantMethods {
  weightView(config: ExperimentConfig, opts?: { layer?: string; bins?: number }): Promise<Result<WeightView>>;
  layerGraph(foldBn?: boolean): Promise<Result<LayerGraphView>>;
  estimate(config: ExperimentConfig, engine: EnginePref, opts?: { images?: number }): Promise<Result<AccuracyEstimate>>;
  cancelEstimate(): Promise<void>;
  prepareEstimate(config: ExperimentConfig, opts?: { images?: number }): Promise<Result<boolean>>;
}

/** What api.ts uses besides the QuantApi methods. */
export interface InstantControl {
  /** Cancel the estimate in progress and wait until it has let go of the engine (before a Run). */
  quiesce(): Promise<void>;
}

function noModel(): never {
  throw new QpError('ARG_INVALID', 'No model is loaded. Pick a model first.');
}

export function instantMethods(deps: InstantDeps): InstantMethods & InstantControl {
  /** FP32 weights of the loaded model per fold setting (two entries at most) */
  let weights: { sha: string; byFold: Map<boolean, WeightModel> } | undefined;
  const cache: EstimateCache = new Map();
  let estimateCtl: AbortController | undefined;
  /** the preparation of the latest change (prepareEstimate), while it runs */
  let prepareCtl: AbortController | undefined;
  /** that preparation, settled or not (it never rejects) */
  let preparing: Promise<unknown> | undefined;
  /** the estimate in progress, settled or not */
  let inFlight: Promise<unknown> | undefined;

  function weightModel(foldBn: boolean): WeightModel {
    const m = deps.model() ?? noModel();
    if (weights?.sha !== m.sha256) weights = { sha: m.sha256, byFold: new Map() };
    let wm = weights.byFold.get(foldBn);
    if (!wm) weights.byFold.set(foldBn, (wm = prepareWeightModel(parseModel(m.bytes), foldBn)));
    return wm;
  }

  return {
    weightView: (config, opts) =>
      asResult(async () => {
        const m = deps.model() ?? noModel();
        if (config.model !== m.spec.id)
          throw new QpError(
            'ARG_INVALID',
            `The settings name model "${config.model}", but the loaded model is "${m.spec.id}". Load that model first.`,
          );
        return weightView(weightModel(config.foldBn), config, opts);
      }),

    layerGraph: (foldBn = true) =>
      asResult(async () => {
        const m = deps.model() ?? noModel();
        const g = parseModel(m.bytes);
        return layerGraph(foldBn ? foldBatchNorm(g).graph : g);
      }),

    estimate: (config, enginePref, opts) => {
      estimateCtl?.abort();
      const ctl = (estimateCtl = new AbortController());
      const work = asResult(async () => {
        const m = deps.model() ?? noModel();
        const ds = deps.dataset();
        if (m.quantized)
          throw new QpError(
            'ARG_INVALID',
            'The loaded model is already quantized: it is evaluated as it is, with no estimate of settings. Open its float parent to try settings on it.',
          );
        if (!ds) throw new QpError('ARG_INVALID', 'No images are loaded. Pick a data source first.');
        if (config.model !== m.spec.id)
          throw new QpError(
            'ARG_INVALID',
            `The settings name model "${config.model}", but the loaded model is "${m.spec.id}". Load that model first.`,
          );
        const { estimateAccuracy } = await import('../src/lib/pipeline/estimate.ts');
        // the latest change's preparation is this estimate's: let it finish its weights
        await preparing;
        const { engine } = await deps.createEngine(enginePref);
        const meta = deps.meta;
        // one record (the latest statistics) under one key, so storage stays bounded
        const store: StatsStore | undefined = meta && {
          load: (key) => meta.getMeta<StoredGroupStats>('estimate-stats').then((s) => (s?.key === key ? s : undefined)),
          save: (s) => meta.setMeta('estimate-stats', s),
        };
        try {
          return await estimateAccuracy(
            config,
            {
              engine,
              modelBytes: m.bytes,
              model: m.spec,
              dataset: ds,
              cropStore: deps.cropStore(),
              cropper: deps.cropper?.(),
            },
            cache,
            { images: opts?.images, signal: ctl.signal, store },
          );
        } finally {
          if (estimateCtl === ctl) estimateCtl = undefined;
        }
      });
      inFlight = work;
      return work;
    },

    cancelEstimate: async () => {
      estimateCtl?.abort();
    },

    prepareEstimate: (config, opts) => {
      // a newer change makes an older preparation useless
      prepareCtl?.abort();
      const ctl = (prepareCtl = new AbortController());
      const work = asResult(async () => {
        const m = deps.model();
        const ds = deps.dataset();
        if (!m || !ds || m.quantized || config.model !== m.spec.id) return false;
        const { prepareEstimate } = await import('../src/lib/pipeline/estimate.ts');
        try {
          return await prepareEstimate(config, ds.name, cache, { images: opts?.images, signal: ctl.signal });
        } finally {
          if (prepareCtl === ctl) prepareCtl = undefined;
        }
      });
      preparing = work;
      return work;
    },

    quiesce: async () => {
      estimateCtl?.abort();
      await inFlight;
    },
  };
}
