/**
 * Checks an exported model.qdq.onnx against the simulation it came from: the deployed
 * model evaluated on the same images as the simulated run, its top-1 and its top-1
 * agreement with the simulation. Used by the CLI's `--export` and the export lesson.
 *
 * Two ways to run the file (`fusions`):
 * - true, onnxruntime's defaults, as a deployment would run it: its QDQ transforms may fuse
 *   pairs into integer kernels or keep DequantizeLinear-fed Convs in another memory layout
 *   than constant-weight Convs, so float sums round differently and rare rounding ties flip
 *   (agreement measured in docs/results.md, "Export");
 * - false, as written: QDQ transforms off (QDQ_SESSION_CONFIG), so DequantizeLinear of the
 *   integer weights is folded into float weights and every Q/DQ pair runs as specified. This
 *   isolates the export itself from the runtime's kernel choices: any difference left is a
 *   fault of the export.
 */
import type { Engine, SessionOptions } from '../engine/types.ts';
import { evaluate } from '../experiment/evaluate.ts';
import type { QuantizedRun } from '../experiment/types.ts';
import { QDQ_SESSION_CONFIG } from '../onnx/fq-qdq.ts';
import { agreement } from '../quant/metrics.ts';

export interface DeployCheck {
  /** fractions */
  deployedTop1: number;
  simulatedTop1: number;
  agreement: number;
}

export function simulatedTop1(run: QuantizedRun): number {
  const { labels, preds } = run.evaluation;
  return preds.reduce((n, p, i) => n + (p === labels[i] ? 1 : 0), 0) / labels.length;
}

export async function verifyExport(
  engine: Engine,
  run: QuantizedRun,
  model: Uint8Array,
  opts: {
    fusions?: boolean;
    batchSize?: number;
    signal?: AbortSignal;
    /** graph optimization level, where the file needs one below the default (ExportBundle.qdqOptimization) */
    optimization?: SessionOptions['optimization'];
  } = {},
): Promise<DeployCheck> {
  const { crops, labels, preds, spec } = run.evaluation;
  const session = await engine.createSession(model, {
    ...(opts.fusions === false ? { config: QDQ_SESSION_CONFIG } : {}),
    ...(opts.optimization ? { optimization: opts.optimization } : {}),
  });
  try {
    const o = await evaluate(session, crops, labels, spec, { batchSize: opts.batchSize ?? 32, signal: opts.signal });
    return { deployedTop1: o.top1Hits / o.n, simulatedTop1: simulatedTop1(run), agreement: agreement(o.preds, preds) };
  } finally {
    await session.release();
  }
}
