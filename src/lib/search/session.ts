/**
 * One search as the app asks for it (QuantApi.searchPrecision): the pipeline's evaluator
 * prepared once, the accuracy-aware search, then optionally the size-versus-top-1 front,
 * with progress counted in evaluations (done / planned) and the outcome as plain data.
 * The worker only gathers the inputs and the engine; this module must not touch storage
 * or the UI.
 */
import type { ExperimentConfig } from '../config/types.ts';
import type { RunInputs } from '../experiment/types.ts';
import type { SchemeSource } from '../pipeline/prepare.ts';
import type { SearchOutcome, SearchProgress, SearchRequest } from '../protocol/search.ts';
import { QpError } from '../util/errors.ts';
import { accuracyControl, controlEvaluations, type Evaluate } from './accuracy-control.ts';
import { pipelineEvaluator } from './evaluator.ts';
import { FRONT_BITS, FRONT_POINTS, paretoEvaluations, paretoFront } from './pareto.ts';

/** Refuses a request the searches cannot run, in a sentence naming the fix. */
export function checkSearchRequest(r: SearchRequest): void {
  if (!(r.maxDrop >= 0 && r.maxDrop <= 100))
    throw new QpError('ARG_INVALID', `The largest top-1 drop must be between 0 and 100 points, got ${r.maxDrop}.`);
  if (!Number.isInteger(r.rankImages) || r.rankImages < 1)
    throw new QpError('ARG_INVALID', `The ranking images must be a whole number of at least 1, got ${r.rankImages}.`);
  if (r.checkImages !== undefined && (!Number.isInteger(r.checkImages) || r.checkImages < 1))
    throw new QpError(
      'ARG_INVALID',
      `The budget-check images must be a whole number of at least 1, got ${r.checkImages}.`,
    );
  if (r.paretoBits && (r.paretoBits.length < 2 || r.paretoBits.some((b) => !FRONT_BITS.includes(b as 2))))
    throw new QpError('ARG_INVALID', 'The front needs at least two bit widths between 2 and 8.');
}

export async function runSearch(
  inputs: RunInputs,
  base: ExperimentConfig,
  request: SearchRequest,
  opts: {
    signal?: AbortSignal;
    scheme?: SchemeSource;
    evalBatch?: number;
    onProgress?: (p: SearchProgress) => void;
  } = {},
): Promise<Omit<SearchOutcome, 'engine'>> {
  checkSearchRequest(request);
  // the budget is checked on the first checkImages evaluation images: the searched configs say so
  if (request.checkImages !== undefined && request.checkImages < base.eval)
    base = { ...base, eval: request.checkImages };
  const t0 = performance.now();
  const { signal } = opts;
  let done = 0;
  let total = 0;
  const report = (message: string) => opts.onProgress?.({ done, total: Math.max(total, done), message });
  /** what the evaluations under way are for; the pipeline's own messages come after it */
  let step = 'Preparing';
  /** the search's own message for the next evaluation ("Ranking layers: conv1") */
  let phase = '';
  report('Preparing: FP32 outputs and calibration statistics');
  const ev = await pipelineEvaluator(inputs, base, {
    rankImages: request.rankImages,
    signal,
    scheme: opts.scheme,
    evalBatch: opts.evalBatch,
    onProgress: (p) => report(`${step}: ${p.message}`),
  });
  const plan = controlEvaluations(ev.layers, base.wBits);
  const front = request.paretoBits
    ? paretoEvaluations(ev.layers, request.paretoBits, request.paretoPoints ?? FRONT_POINTS)
    : 0;
  total = plan.planned + front;
  // every evaluation counts once, whichever search asks for it
  const evaluate: Evaluate = async (cfg, purpose) => {
    step = `${phase || (purpose === 'rank' ? 'Ranking' : 'Checking the budget')} (evaluation ${done + 1})`;
    phase = '';
    report(step);
    const r = await ev.evaluate(cfg, purpose);
    done++;
    report(step);
    return r;
  };
  const c = await accuracyControl({
    base,
    layers: ev.layers,
    reference: ev.reference,
    maxDrop: request.maxDrop / 100,
    evaluate,
    signal,
    prune: request.prune ?? false,
    // the pruning pass (at most one validation per kept layer) goes beyond the plan: total follows done
    onProgress: (message) => void (phase = message),
  });
  // the search ran what it ran: the rest of the plan is the front's
  total = done + front;
  const control = {
    maxDrop: request.maxDrop,
    met: c.met,
    kept: c.kept,
    highBits: c.highBits,
    top1: c.top1,
    drop: c.drop,
    sizeBits: c.sizeBits,
    baseTop1: c.steps[0].top1,
    baseSizeBits: c.baseSizeBits,
    config: c.config,
    ranking: c.ranking.map((l) => ({
      layer: l.layer,
      params: l.params,
      bits: l.bits,
      gain: l.gain,
      agreementGain: l.agreementGain,
    })),
    evaluations: c.evaluations,
  };
  let frontOut: SearchOutcome['front'];
  if (request.paretoBits) {
    const p = await paretoFront({
      base,
      layers: ev.layers,
      bits: request.paretoBits,
      points: request.paretoPoints ?? FRONT_POINTS,
      evaluate,
      signal,
      onProgress: (message) => void (phase = message),
    });
    frontOut = {
      bits: [...request.paretoBits].sort((a, b) => a - b),
      points: p.evaluated.map((q) => ({
        config: q.config,
        sizeBits: q.sizeBits,
        top1: q.top1,
        predictedCost: q.predictedCost,
        front: p.front.includes(q),
      })),
      uniform: p.uniform,
      evaluations: p.evaluations,
    };
  }
  return {
    base,
    fp32: { top1: ev.reference.validate.top1, images: ev.reference.validate.preds.length },
    rankImages: ev.reference.rank.preds.length,
    layers: ev.layers.length,
    control,
    front: frontOut,
    evaluations: done,
    seconds: (performance.now() - t0) / 1000,
  };
}
