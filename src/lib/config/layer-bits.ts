/**
 * Per-layer weight bit widths (mixed precision): the text form shared by the CLI
 * (`--layer-bits Conv_94=8,Conv_2=8`) and the URL, and the lookup the quantizer uses.
 *
 * Why it exists: keeping a few sensitive layers at a higher bit width is the cheapest
 * mixed-precision scheme; the config carries it as layer (ONNX node name) → bits.
 * Pure: no engine, no I/O.
 */
import { QpError } from '../util/errors.ts';

export type LayerBits = Record<string, number>;

/**
 * Parses "Conv_94=8,Conv_2=6" (":" also accepted in place of "="; spaces ignored).
 * An empty text gives {}. Throws QpError CONFIG_INVALID naming the bad entry.
 */
export function parseLayerBits(text: string): LayerBits {
  const out: LayerBits = {};
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (!item) continue;
    const m = /^([^=:\s]+)\s*[=:]\s*(\d{1,2})$/.exec(item);
    if (!m) {
      throw new QpError(
        'CONFIG_INVALID',
        `The layer bit width "${item}" is not of the form NODE=BITS (e.g. Conv_94=8); list them separated by commas.`,
      );
    }
    out[m[1]] = Number(m[2]);
  }
  validateLayerBits(out);
  return out;
}

/** Canonical text: entries sorted by layer name, "name=bits" joined by commas. */
export function formatLayerBits(bits: LayerBits): string {
  return Object.keys(bits)
    .sort()
    .map((k) => `${k}=${bits[k]}`)
    .join(',');
}

/** Throws QpError CONFIG_INVALID unless every entry is a whole number of bits from 2 to 16. */
export function validateLayerBits(bits: unknown): void {
  if (!bits || typeof bits !== 'object' || Array.isArray(bits)) {
    throw new QpError(
      'CONFIG_INVALID',
      'layerBits must map layer (ONNX node) names to bit widths, e.g. {"Conv_94": 8}.',
    );
  }
  for (const [k, v] of Object.entries(bits as Record<string, unknown>)) {
    if (!k)
      throw new QpError('CONFIG_INVALID', 'A layer bit width names no layer; give the ONNX node name, e.g. Conv_94=8.');
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 2 || v > 16) {
      throw new QpError(
        'CONFIG_INVALID',
        `The bit width of layer ${k} must be a whole number from 2 to 16, got ${String(v)}.`,
      );
    }
  }
}
