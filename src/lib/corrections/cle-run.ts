/**
 * Cross-layer equalization on a real model: equalize (pure, src/lib/analysis/cle.ts), then
 * measure the per-channel mean and deviation of each pair's pre-activation on
 * calibration images and absorb high biases. The measuring is the only engine work.
 */
import type { Engine } from '../engine/types.ts';
import type { Graph } from '../onnx/ir.ts';
import type { PreprocessSpec } from '../data/types.ts';
import { channelMoments } from '../analysis/stats.ts';
import { absorbHighBias, equalize, type ChannelDistribution, type Relu6Mode } from './cle.ts';

export interface CleRunOptions {
  relu6?: Relu6Mode;
  /** absorb high biases (default true; never with relu6 'keep') */
  absorb?: boolean;
  /** calibration images used for the pre-activation statistics (default 32) */
  images?: number;
  batchSize: number;
  signal?: AbortSignal;
}

export interface CleReport {
  pairs: number;
  sweeps: number;
  absorbedPairs: number;
}

export async function applyCle(
  engine: Engine,
  graph: Graph,
  crops: Uint8Array[],
  spec: PreprocessSpec,
  opts: CleRunOptions,
): Promise<{ graph: Graph; report: CleReport }> {
  const relu6 = opts.relu6 ?? 'clip';
  const eq = equalize(graph, { relu6 });
  const targets = eq.pairs.map((p) => p.preActivation);
  if (targets.length === 0 || relu6 === 'keep' || opts.absorb === false) {
    return { graph: eq.graph, report: { pairs: eq.pairs.length, sweeps: eq.sweeps, absorbedPairs: 0 } };
  }
  const moments = await channelMoments(engine, eq.graph, targets, crops.slice(0, opts.images ?? 32), spec, {
    batchSize: opts.batchSize,
    signal: opts.signal,
  });
  const dist = new Map<string, ChannelDistribution>();
  for (const [t, m] of moments) {
    const std = m.mean.map((mu, i) => Math.sqrt(Math.max(0, m.meanSq[i] - mu * mu)));
    dist.set(t, { mean: m.mean, std });
  }
  const ab = absorbHighBias(eq.graph, eq.pairs, dist);
  return { graph: ab.graph, report: { pairs: eq.pairs.length, sweeps: eq.sweeps, absorbedPairs: ab.absorbed.size } };
}
