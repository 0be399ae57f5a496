/**
 * Evaluation: run a session over labelled crops and count top-1/top-5 hits, keeping
 * each image's top-1 prediction so FP32 and quantized runs can be compared image by
 * image (agreement). Only the logits of one batch are alive at a time.
 */
import { throwIfAborted } from '../protocol/errors.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { EngineSession } from '../engine/types.ts';
import { topK, wilsonInterval } from '../quant/metrics.ts';
import { batches } from './batches.ts';
import type { Accuracy } from './types.ts';

export interface EvalOutcome {
  n: number;
  top1Hits: number;
  top5Hits: number;
  /** top-1 class per image, in input order */
  preds: Int32Array;
}

export interface EvalOptions {
  batchSize: number;
  signal?: AbortSignal;
  onBatch?: (done: number, total: number) => void;
}

export async function evaluate(
  session: EngineSession,
  crops: Uint8Array[],
  labels: number[],
  spec: PreprocessSpec,
  opts: EvalOptions,
): Promise<EvalOutcome> {
  const input = session.inputNames[0];
  const output = session.outputNames[0];
  const preds = new Int32Array(crops.length);
  let top1Hits = 0;
  let top5Hits = 0;
  let done = 0;
  for (const b of batches(crops, spec, opts.batchSize)) {
    throwIfAborted(opts.signal);
    const out = (await session.run({ [input]: b.tensor }, [output]))[output];
    const classes = out.data.length / b.rows.length;
    for (let r = 0; r < b.rows.length; r++) {
      const top = topK(out.data, classes, 5, r);
      const label = labels[b.rows[r]];
      preds[b.rows[r]] = top[0];
      if (top[0] === label) top1Hits++;
      if (top.includes(label)) top5Hits++;
    }
    done += b.rows.length;
    opts.onBatch?.(done, crops.length);
  }
  return { n: crops.length, top1Hits, top5Hits, preds };
}

export function toAccuracy(o: EvalOutcome): Accuracy {
  return {
    top1: o.top1Hits / o.n,
    top5: o.top5Hits / o.n,
    top1Ci: wilsonInterval(o.top1Hits, o.n),
    top5Ci: wilsonInterval(o.top5Hits, o.n),
  };
}

/** Fraction of images whose top-1 prediction is the same in both runs. */
export function agreement(a: Int32Array, b: Int32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return a.length ? same / a.length : 0;
}
