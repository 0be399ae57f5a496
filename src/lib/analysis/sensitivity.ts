/**
 * Per-layer sensitivity and "keep the k most sensitive layers at 8 bits" (mixed
 * precision), as pure functions over measured per-layer results.
 *
 * Why it exists: at 4-bit weights a few layers (MobileNet-V2's first conv, some
 * depthwise convs) cause most of the loss; ranking layers by the damage each does alone
 * and keeping the worst at 8 bits buys most of the accuracy back for little model size.
 * The measuring (one fake-quant model per layer) lives in sensitivity-run.ts.
 */
import type { LayerBits } from '../config/layer-bits.ts';

/** One layer quantized alone at the low bit width, everything else FP32. */
export interface LayerSensitivity {
  /** ONNX node name (the key of layerBits) */
  layer: string;
  /** weight parameter count */
  params: number;
  /** top-1 on the sensitivity subset with only this layer quantized */
  top1: number;
  /** FP32 top-1 minus top1 (fraction) */
  top1Drop: number;
  /** fraction of subset images whose top-1 class differs from FP32's */
  disagreement: number;
}

/**
 * Most sensitive first: by disagreement with FP32 (finer-grained than top-1 on a small
 * subset), then by top-1 drop, then by name for a stable order.
 */
export function rankBySensitivity(layers: readonly LayerSensitivity[]): LayerSensitivity[] {
  return [...layers].sort(
    (a, b) => b.disagreement - a.disagreement || b.top1Drop - a.top1Drop || a.layer.localeCompare(b.layer),
  );
}

/** layerBits keeping the first k layers of `ranked` at `bits`. */
export function keepMostSensitive(ranked: readonly LayerSensitivity[], k: number, bits = 8): LayerBits {
  const out: LayerBits = {};
  for (const l of ranked.slice(0, Math.max(0, k))) out[l.layer] = bits;
  return out;
}

/**
 * Weight storage in bits: Σ params × bits over layers, each at its layerBits entry, else
 * its own `bits` (e.g. 8 for a layer firstLast8bit keeps), else `defaultBits` (biases and
 * other float tensors are not counted).
 */
export function modelWeightBits(
  layers: readonly { layer: string; params: number; bits?: number }[],
  defaultBits: number,
  layerBits: LayerBits = {},
): number {
  let total = 0;
  for (const l of layers) total += l.params * (layerBits[l.layer] ?? l.bits ?? defaultBits);
  return total;
}

/** One point of the size-versus-top-1 plot. */
export interface MixedPrecisionChoice {
  k: number;
  layers: string[];
  sizeBits: number;
}

/** The choices k = each of `ks`: which layers stay at highBits and the weight size. */
export function mixedPrecisionChoices(
  ranked: readonly LayerSensitivity[],
  ks: readonly number[],
  lowBits: number,
  highBits = 8,
  base: LayerBits = {},
): MixedPrecisionChoice[] {
  return ks.map((k) => {
    const keep = { ...base, ...keepMostSensitive(ranked, k, highBits) };
    return {
      k,
      layers: Object.keys(keepMostSensitive(ranked, k, highBits)),
      sizeBits: modelWeightBits(ranked, lowBits, keep),
    };
  });
}
