/**
 * Running graphs whose outputs are reductions over sub-batches of images and folding
 * the results into float64 accumulators: per-channel moments (drift, fixes) and the
 * combined analysis graph. Goes through the Engine interface only; holds at most one
 * sub-batch of input and the graph's small outputs at a time.
 */
import { checkpoint } from '../util/checkpoint.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { Engine, FloatTensor } from '../engine/types.ts';
import { buildChannelStatsGraph } from '../onnx/calibration.ts';
import type { Graph } from '../onnx/ir.ts';
import { serializeModel } from '../onnx/model.ts';
import { fakeQuantWithoutRound } from '../onnx/fq-floor.ts';
import { batches } from '../experiment/batches.ts';
import { ChannelMoments } from './metrics.ts';

export interface BatchRunOptions {
  batchSize: number;
  signal?: AbortSignal;
  onBatch?: (done: number, total: number) => void;
}

/** Runs `graph` over the crops in sub-batches, calling `each(outputs, images)` per batch. */
export async function forEachBatch(
  engine: Engine,
  graph: Graph,
  crops: Uint8Array[],
  spec: PreprocessSpec,
  fetches: string[],
  opts: BatchRunOptions,
  each: (out: Record<string, FloatTensor>, images: number) => void,
): Promise<void> {
  // WebGPU has no Round kernel: the same fake-quant from ops it implements (onnx/fq-floor.ts)
  const session = await engine.createSession(
    serializeModel(engine.kind === 'webgpu' ? fakeQuantWithoutRound(graph).graph : graph),
  );
  try {
    const input = session.inputNames[0];
    let done = 0;
    for (const b of batches(crops, spec, opts.batchSize)) {
      await checkpoint(opts.signal);
      const out = await session.run({ [input]: b.tensor }, fetches);
      each(out, b.rows.length);
      done += b.rows.length;
      opts.onBatch?.(done, crops.length);
    }
  } finally {
    await session.release();
  }
}

/** Per-channel mean and E[x²] (channel axis 1) of each tensor over the crops. */
export async function channelMoments(
  engine: Engine,
  graph: Graph,
  tensors: string[],
  crops: Uint8Array[],
  spec: PreprocessSpec,
  opts: BatchRunOptions,
): Promise<Map<string, ChannelMoments>> {
  const { graph: sg, outputs } = buildChannelStatsGraph(graph, tensors);
  const res = new Map<string, ChannelMoments>();
  const fetches = [...outputs.values()].flatMap((o) => [o.mean, o.meanSq]);
  await forEachBatch(engine, sg, crops, spec, fetches, opts, (out, images) => {
    for (const t of tensors) {
      const o = outputs.get(t)!;
      const mean = out[o.mean].data;
      let m = res.get(t);
      if (!m) res.set(t, (m = new ChannelMoments(mean.length)));
      m.add(mean, out[o.meanSq].data, images);
    }
  });
  return res;
}
