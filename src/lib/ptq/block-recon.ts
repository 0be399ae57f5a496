/**
 * Reconstruction with gradients from the engine, unit by unit in network order (units.ts):
 * BRECQ (Li et al. 2021) optimises whole blocks, QDrop (Wei et al. 2022) the same blocks
 * with activation quantization dropped at random, and AdaRound here optimises single
 * layers the same way when activation step sizes are learned too (with fixed step sizes
 * the Gram-matrix AdaRound of reconstruct.ts is exact and faster). Every unit is fitted on
 * its input as the quantized model computes it (every earlier unit already reconstructed,
 * its step sizes learned), towards the FP32 model's output of the same unit, as MQBench;
 * with ptqInputs 'fp32' on the FP32 model's input instead.
 *
 * Data flow: the values of both models at the latest single-tensor cut (cuts.ts) are kept
 * for all calibration images; a unit's input and target come from a forward pass of the
 * segment after that cut (or directly from the previous unit's output, which is the usual
 * case), and the unit's own full pass after training gives the quantized model's output the
 * next unit starts from. Weight layers at 8 bits or more keep round-to-nearest (their
 * input step sizes are still learned). Returns new weights and activation parameters; the
 * inputs are not modified.
 */
import { QpError, throwIfAborted } from '../util/errors.ts';
import { median } from '../util/median.ts';
import { bitsOf, EIGHT_BIT, skippedReport } from './reconstruct.ts';
import { learnsActivationRanges, PTQ_LABEL, type PtqInputs } from '../config/names.ts';
import type { ExperimentConfig } from '../config/types.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { Engine } from '../engine/types.ts';
import { ensureOpset, insertFakeQuant } from '../onnx/fake-quant.ts';
import { cloneGraph, type Graph } from '../onnx/ir.ts';
import { batches } from '../experiment/batches.ts';
import type { ActivationQuant, WeightQuant } from '../experiment/quantize.ts';
import type { PtqLayerReport, PtqReport, PtqUnitReport } from '../protocol/ptq.ts';
import { ActivationSet } from './activation-set.ts';
import { latestCut, singleTensorCuts, type Cut } from './cuts.ts';
import { runSegment, type Held } from './segments.ts';
import { blockUnits, layerUnits, type ReconUnit } from './units.ts';
import { trainUnit, type UnitActivationInput, type UnitTraining, type UnitWeightInput } from './unit-trainer.ts';

export type BlockMethod = 'adaround' | 'brecq' | 'qdrop';

/** Hyper-parameters of the optimisation (see reconHyper for the values and why). */
export type ReconHyper = Pick<
  UnitTraining,
  'batch' | 'lambda' | 'betaStart' | 'betaEnd' | 'warmup' | 'lrRounding' | 'lrScale' | 'evalBatch'
>;

/**
 * Adam's step sizes times MQBench's 20,000 steps (1e-3 on the rounding variables, 4e-5 on
 * the activation step sizes): how far each may travel in a run. A run of N steps here uses
 * these distances divided by N, so a short run can still move a rounding variable from its
 * start (|V| ≤ 2.4) to either end and a step size as far as MQBench's. Measured on one
 * MobileNet-V2 block at 300 steps: 1e-2 per step (a distance of 3) left 0.455 of the block's
 * relative error, 3e-2 0.411, 0.1 0.399 (docs/reconstruction-low-bit.md).
 */
export const ROUNDING_DISTANCE = 20;
export const SCALE_DISTANCE = 0.8;

/**
 * The rest is MQBench's: regulariser weight 0.01, β from 20 to 2 after a 20 % warm-up.
 * Steps take 4 images (a 28×28 window of each, unit-trainer.ts), not MQBench's 32 whole
 * ones: on the block above, 600 steps of 4 left 0.398 and 300 steps of 8 (the same work)
 * 0.411, so more steps of fewer images serve a fixed budget better.
 */
export const RECON_DEFAULTS: Omit<ReconHyper, 'lrRounding' | 'lrScale'> = {
  batch: 4,
  lambda: 0.01,
  betaStart: 20,
  betaEnd: 2,
  warmup: 0.2,
  evalBatch: 8,
};

/**
 * Runs shorter than this many steps keep its step sizes rather than grow them further:
 * 0.1 per step on the rounding variables is the largest measured (above), and a very short
 * run at 20/N overshoots (at 60 steps a single stem convolution ended above its
 * round-to-nearest error).
 */
export const MIN_SCALED_ITERS = 200;

/** The hyper-parameters of a run of `iters` steps per unit, `over` replacing any of them. */
export function reconHyper(iters: number, over: Partial<ReconHyper> = {}): ReconHyper {
  const n = Math.max(iters, MIN_SCALED_ITERS);
  return {
    ...RECON_DEFAULTS,
    lrRounding: ROUNDING_DISTANCE / n,
    lrScale: SCALE_DISTANCE / n,
    ...over,
  };
}

export interface BlockReconOptions {
  method: BlockMethod;
  /** optimisation steps per unit */
  iters: number;
  /** learn the activation quantizers' step sizes (LSQ) together with the rounding */
  learnActivations: boolean;
  /** QDrop: probability that an element's activation quantization is dropped (0–1) */
  dropProb: number;
  inputs: PtqInputs;
  seed?: number;
  hyper?: Partial<ReconHyper>;
  signal?: AbortSignal;
  /**
   * steps done of all units' steps, a line saying where, and the units a person counts
   * ("block 3 / 18"; layers for AdaRound)
   */
  onProgress?: (done: number, total: number, message: string, count: UnitCount) => void;
}

/** Whole units done of the units trained, and what a unit is. */
export interface UnitCount {
  done: number;
  total: number;
  of: 'blocks' | 'layers';
}

export interface BlockReconResult {
  weights: WeightQuant[];
  activations: ActivationQuant[];
  report: PtqReport;
}

export { usesEngineGradients } from '../config/names.ts';

/** The options of a config that uses engine gradients (see usesEngineGradients). */
export function blockReconOptions(cfg: ExperimentConfig): BlockReconOptions {
  if (cfg.ptq !== 'adaround' && cfg.ptq !== 'brecq' && cfg.ptq !== 'qdrop')
    throw new QpError('INTERNAL', `Reconstruction with engine gradients cannot run ${cfg.ptq}.`);
  return {
    method: cfg.ptq,
    iters: cfg.ptqIters,
    learnActivations: learnsActivationRanges(cfg),
    dropProb: cfg.ptqDrop / 100,
    inputs: cfg.ptqInputs,
    seed: cfg.seed,
  };
}

/** See the module header. `weights` are round-to-nearest on the observers' grids. */
export async function reconstructBlocks(
  engine: Engine,
  graph: Graph,
  weights: WeightQuant[],
  acts: ActivationQuant[],
  crops: Uint8Array[],
  spec: PreprocessSpec,
  opts: BlockReconOptions,
): Promise<BlockReconResult> {
  const t0 = performance.now();
  const hyper = reconHyper(opts.iters, opts.hyper);
  const label = PTQ_LABEL[opts.method];
  const fp = cloneGraph(graph, { shareInitializers: true });
  ensureOpset(fp, 11);
  if (fp.inputs.length !== 1)
    throw new QpError('MODEL_UNSUPPORTED', `${label} needs a model with one input; this one has ${fp.inputs.length}.`);
  const quantized = new Set(acts.map((a) => a.point.tensor));
  const points = weights.map((w) => w.point);
  const units = opts.method === 'adaround' ? layerUnits(fp, points, quantized) : blockUnits(fp, points);
  const weightOf = new Map(weights.map((w) => [w.point.initializer, w]));
  const current = new Map(weights.map((w) => [w.point.initializer, w]));
  const currentAct = new Map(acts.map((a) => [a.point.tensor, a]));
  const learnable = (u: ReconUnit) =>
    !u.skipped && (u.layers.some((p) => bitsOf(weightOf.get(p.initializer)!) < 8) || opts.learnActivations);
  const trainable = units.filter(learnable);
  const total = trainable.length * opts.iters;
  const cuts = singleTensorCuts(fp);
  const drop = opts.method === 'qdrop';
  const of = opts.method === 'adaround' ? 'layers' : 'blocks';
  const count = (n: number): UnitCount => ({ done: n, total: trainable.length, of });

  // both models start at the model input
  const inputName = fp.inputs[0].name;
  let images: ActivationSet | undefined;
  for (const b of batches(crops, spec, hyper.evalBatch)) {
    images ??= new ActivationSet(b.tensor.dims.slice(1));
    images.push(b.tensor);
  }
  if (!images) throw new QpError('ARG_INVALID', `${label} needs calibration images; none were given.`);
  const start: Held = { tensor: inputName, set: images };
  let qCut: Held = start;
  let fpCut: Held = start;
  let qKnown = new Map<string, ActivationSet>([[inputName, images]]);
  let fpKnown = new Map<string, ActivationSet>([[inputName, images]]);
  let quantGraph: Graph | undefined;
  const quantModel = () =>
    (quantGraph ??= (() => {
      const q = insertFakeQuant(fp, {
        weights: new Map([...current].map(([k, w]) => [k, w.values])),
        activations: new Map([...currentAct].map(([k, a]) => [k, a.qparams])),
      });
      ensureOpset(q, 11);
      return q;
    })());

  let passSeconds = 0;
  const valuesAt = async (model: 'q' | 'fp', tensors: string[]): Promise<Map<string, ActivationSet>> => {
    const known = model === 'q' ? qKnown : fpKnown;
    const out = new Map<string, ActivationSet>();
    const missing = tensors.filter((t) => {
      const k = known.get(t);
      if (k) out.set(t, k);
      return !k;
    });
    if (missing.length) {
      const tp = performance.now();
      const res = await runSegment(
        engine,
        model === 'q' ? quantModel() : fp,
        model === 'q' ? qCut : fpCut,
        missing,
        opts.signal,
      );
      passSeconds += (performance.now() - tp) / 1000;
      for (const [t, s] of res) out.set(t, s);
    }
    return out;
  };

  const unitReports: PtqUnitReport[] = [];
  const layerReports = new Map<string, PtqLayerReport>();
  let done = 0;
  let trained = 0;
  for (const unit of units) {
    throwIfAborted(opts.signal);
    const t1 = performance.now();
    // resume both models from the latest cut before the unit
    const cut: Cut | undefined = latestCut(cuts, unit.first);
    if (cut && cut.tensor !== qCut.tensor) {
      const q = await valuesAt('q', [cut.tensor]);
      const f = await valuesAt('fp', [cut.tensor]);
      qCut = { tensor: cut.tensor, set: q.get(cut.tensor)! };
      fpCut = { tensor: cut.tensor, set: f.get(cut.tensor)! };
      qKnown = new Map([[cut.tensor, qCut.set]]);
      fpKnown = new Map([[cut.tensor, fpCut.set]]);
    }
    const layerNames = unit.layers.map((p) => p.node);
    if (!learnable(unit)) {
      const why = unit.skipped ?? '8-bit layers keep round-to-nearest';
      for (const p of unit.layers) layerReports.set(p.initializer, skippedReport(weightOf.get(p.initializer)!, why));
      unitReports.push({
        name: unit.name,
        layers: layerNames,
        errorBefore: NaN,
        errorAfter: NaN,
        scales: [],
        seconds: 0,
        skipped: why,
      });
      continue;
    }
    trained++;
    opts.onProgress?.(done, total, `${label} ${trained}/${trainable.length}: ${unit.name}`, count(trained - 1));
    const fpVals = await valuesAt('fp', [unit.input, unit.output]);
    const fpIn = fpVals.get(unit.input)!;
    const target = fpVals.get(unit.output)!;
    const qIn = opts.inputs === 'fp32' ? fpIn : (await valuesAt('q', [unit.input])).get(unit.input)!;

    const unitWeights = new Map<string, UnitWeightInput>();
    for (const p of unit.layers) {
      const w = current.get(p.initializer)!;
      const init = fp.initializers.get(p.initializer)!;
      const learn = bitsOf(w) < 8;
      unitWeights.set(p.initializer, {
        values: w.values,
        dims: init.dims,
        qparams: w.qparams,
        float: learn ? (init.data as Float32Array) : undefined,
        learn,
      });
    }
    const unitActs = new Map<string, UnitActivationInput>();
    const read = new Set(unit.nodes.flatMap((n) => n.inputs));
    for (const t of read) {
      const a = currentAct.get(t);
      if (a) unitActs.set(t, { qparams: a.qparams, learn: opts.learnActivations && a.qparams.scale.length === 1 });
    }
    const base = done;
    // wall time between consecutive steps (batch, engine pass, update): its median is the
    // unit's cost per step without the passes and session set-up around the loop
    const stepMs: number[] = [];
    let lastStep: number | undefined;
    const outcome = await trainUnit(
      engine,
      fp,
      unit,
      unitWeights,
      unitActs,
      { input: qIn, fpInput: fpIn, target, mixInput: drop && opts.inputs !== 'fp32' },
      {
        ...hyper,
        iters: opts.iters,
        seed: ((opts.seed ?? 0) * 1_000_003 + trained * 7919) >>> 0,
        keep: drop ? 1 - opts.dropProb : null,
        signal: opts.signal,
        onStep: (s) => {
          const now = performance.now();
          if (lastStep !== undefined) stepMs.push(now - lastStep);
          lastStep = now;
          done = base + s;
          if (s % 25 === 0 || s === opts.iters)
            opts.onProgress?.(
              done,
              total,
              `${label} ${trained}/${trainable.length}: ${unit.name}, step ${s}/${opts.iters}`,
              count(trained - 1),
            );
        },
      },
    );
    // the unit is final: later passes see its rounding and step sizes
    for (const [k, v] of outcome.values) current.set(k, { ...current.get(k)!, values: v });
    const scales: PtqUnitReport['scales'] = [];
    for (const [t, s] of outcome.scales) {
      const a = currentAct.get(t)!;
      scales.push({ tensor: t, before: a.qparams.scale[0], after: s });
      currentAct.set(t, withScale(a, s));
    }
    quantGraph = undefined;
    qKnown = new Map([
      [qCut.tensor, qCut.set],
      [unit.output, outcome.output],
    ]);
    fpKnown = new Map([
      [fpCut.tensor, fpCut.set],
      [unit.output, target],
    ]);
    const seconds = (performance.now() - t1) / 1000;
    unitReports.push({
      name: unit.name,
      layers: layerNames,
      errorBefore: outcome.errorBefore,
      errorAfter: outcome.errorAfter,
      scales,
      seconds,
      ...(stepMs.length ? { stepSeconds: median(stepMs) / 1000 } : {}),
      ...(outcome.keptEntry ? { keptEntry: true } : {}),
    });
    for (const p of unit.layers) {
      const w = current.get(p.initializer)!;
      const flips = outcome.flips.get(p.initializer);
      layerReports.set(
        p.initializer,
        flips === undefined
          ? skippedReport(w, EIGHT_BIT)
          : {
              node: p.node,
              initializer: p.initializer,
              bits: bitsOf(w),
              // a layer's own error is measured only when it is a unit of its own
              errorBefore: unit.layers.length === 1 ? outcome.errorBefore : NaN,
              errorAfter: unit.layers.length === 1 ? outcome.errorAfter : NaN,
              flips,
              seconds: seconds / unit.layers.length,
            },
      );
    }
  }
  opts.onProgress?.(total, total, `${label} done`, count(trainable.length));
  const seconds = (performance.now() - t0) / 1000;
  return {
    weights: weights.map((w) => current.get(w.point.initializer)!),
    activations: acts.map((a) => currentAct.get(a.point.tensor)!),
    report: {
      method: opts.method,
      iters: opts.iters,
      layers: weights.map(
        (w) =>
          layerReports.get(w.point.initializer) ?? skippedReport(w, 'not inside a unit the backward pass can handle'),
      ),
      gramSeconds: passSeconds,
      solveSeconds: seconds - passSeconds,
      units: unitReports,
      learnActivations: opts.learnActivations,
      ...(drop ? { dropProb: opts.dropProb } : {}),
      batch: hyper.batch,
    },
  };
}

/**
 * The activation quantizer with a learned step size (zero point kept; its range follows).
 * The calibrated step and range stay in `calibrated` (the first ones, when a later unit
 * learns the point again), for the export's ranges file.
 */
function withScale(a: ActivationQuant, s: number): ActivationQuant {
  const qp = a.qparams;
  return {
    ...a,
    calibrated: a.calibrated ?? { scale: qp.scale[0], min: a.min, max: a.max },
    qparams: { ...qp, scale: Float32Array.of(s), zeroPoint: Int32Array.from(qp.zeroPoint) },
    min: Math.fround((qp.qmin - qp.zeroPoint[0]) * s),
    max: Math.fround((qp.qmax - qp.zeroPoint[0]) * s),
  };
}
