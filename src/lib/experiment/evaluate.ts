/**
 * Evaluation: run a session over labelled crops and count top-1/top-5 hits, keeping
 * each image's top-1 prediction so FP32 and quantized runs can be compared image by
 * image (agreement). Only the logits of one batch are alive at a time.
 */
import { checkpoint } from '../util/checkpoint.ts';
import type { Engine, SessionOptions } from '../engine/types.ts';
import { foldFakeQuantScales } from '../onnx/fold-fq-scales.ts';
import { fakeQuantAsQdq, QDQ_SESSION_CONFIG } from '../onnx/fq-qdq.ts';
import { fakeQuantWithoutRound } from '../onnx/fq-floor.ts';
import type { Graph } from '../onnx/ir.ts';
import { serializeModel } from '../onnx/model.ts';
import type { PipelineTuning } from './inputs.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { EngineSession } from '../engine/types.ts';
import { AccuracyCounter, wilsonInterval } from '../quant/metrics.ts';
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
  // created on the first batch, when the class count is known
  let counter: AccuracyCounter | undefined;
  let done = 0;
  for (const b of batches(crops, spec, opts.batchSize)) {
    await checkpoint(opts.signal);
    const out = (await session.run({ [input]: b.tensor }, [output]))[output];
    counter ??= new AccuracyCounter(out.data.length / b.rows.length, crops.length);
    // batches come in input order, so the counter's predictions line up with `crops`
    counter.add(
      out.data,
      b.rows.map((r) => labels[r]),
      b.rows.length,
    );
    done += b.rows.length;
    opts.onBatch?.(done, crops.length);
  }
  return counter
    ? { n: counter.n, top1Hits: counter.top1, top5Hits: counter.top5, preds: counter.predictions() }
    : { n: 0, top1Hits: 0, top5Hits: 0, preds: new Int32Array(0) };
}

export function toAccuracy(o: EvalOutcome): Accuracy {
  return {
    top1: o.top1Hits / o.n,
    top5: o.top5Hits / o.n,
    top1Ci: wilsonInterval(o.top1Hits, o.n),
    top5Ci: wilsonInterval(o.top5Hits, o.n),
  };
}

/**
 * The fake-quant graph as evaluated: bit-exact QuantizeLinear → DequantizeLinear pairs on
 * the CPU engines (onnx/fq-qdq.ts, two passes instead of four), the element-wise form with
 * Round built from Floor on WebGPU (onnx/fq-floor.ts: its provider has kernels for neither
 * Round nor QuantizeLinear), or the folded scales when the tuning asks for them.
 */
export function evaluationModel(
  engine: Engine,
  fq: Graph,
  tuning: Pick<PipelineTuning, 'foldScales'>,
): { bytes: Uint8Array; options: SessionOptions } {
  if (tuning.foldScales) return { bytes: serializeModel(foldFakeQuantScales(fq).graph), options: {} };
  if (engine.kind === 'webgpu') return { bytes: serializeModel(fakeQuantWithoutRound(fq).graph), options: {} };
  return { bytes: serializeModel(fakeQuantAsQdq(fq).graph), options: { config: QDQ_SESSION_CONFIG } };
}
