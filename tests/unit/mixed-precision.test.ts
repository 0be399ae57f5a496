import { describe, expect, it } from 'vitest';
import { CONFIG_FIELDS } from '../../src/lib/config/schema.ts';
import { defaultConfig, resolveConfig } from '../../src/lib/config/resolve.ts';
import { canonicalJson, configHash } from '../../src/lib/config/hash.ts';
import { quantizeWeights, weightBitsOf } from '../../src/lib/experiment/quantize.ts';
import { findQuantPoints } from '../../src/lib/onnx/placement.ts';
import { formatLayerBits, parseLayerBits, validateLayerBits } from '../../src/lib/config/layer-bits.ts';
import {
  keepMostSensitive,
  mixedPrecisionChoices,
  modelWeightBits,
  rankBySensitivity,
  type LayerSensitivity,
} from '../../src/lib/analysis/sensitivity.ts';
import { parse, serialize } from '../../src/lib/config/url.ts';
import { parseBenchArgs } from '../../src/cli/args.ts';
import { smallCnn } from '../support/onnx-helpers.ts';

describe('layer bits text', () => {
  it('parses NODE=BITS lists, formats them canonically and rejects bad entries with a sentence', () => {
    expect(parseLayerBits('Conv_94=8, Conv_2:6,,')).toEqual({ Conv_94: 8, Conv_2: 6 });
    expect(formatLayerBits({ b: 8, a: 4 })).toBe('a=4,b=8');
    expect(parseLayerBits('')).toEqual({});
    expect(() => parseLayerBits('Conv_94')).toThrow(/NODE=BITS/);
    expect(() => parseLayerBits('Conv_94=1')).toThrow(/from 2 to 16, got 1/);
    expect(() => resolveConfig({ layerBits: { Conv_1: 17 } })).toThrow(
      /layerBits\) must be a list of NODE=BITS pairs with bits from 2 to 16/,
    );
  });

  it('travels through the URL and the CLI', () => {
    const cfg = resolveConfig({ backend: 'academic', wBits: 4, layerBits: { Conv_94: 8, Conv_0: 8 }, cle: true });
    const hash = serialize(cfg);
    expect(hash).toContain('cle=1');
    expect(hash).toContain(`layerBits=${encodeURIComponent('Conv_0=8,Conv_94=8')}`);
    const back = parse(hash);
    expect(back.notices).toEqual([]);
    expect(back.config).toEqual(cfg);
    expect(serialize(defaultConfig())).not.toMatch(/cle|layerBits/);
    expect(parse('v=1&layerBits=Conv_1').notices.join(' ')).toMatch(/NODE=BITS/);

    const a = parseBenchArgs([
      '--model',
      'm',
      '--data',
      'd',
      '--fix',
      'cle,bias-correction',
      '--layer-bits',
      'Conv_94=8',
    ]);
    expect(a.configs[0]).toMatchObject({ cle: true, biasCorrection: true, layerBits: { Conv_94: 8 } });
    expect(parseBenchArgs(['--model', 'm', '--data', 'd', '--keep-sensitive', '1,3,5']).keepSensitive).toEqual([
      1, 3, 5,
    ]);
    expect(() => parseBenchArgs(['--model', 'm', '--data', 'd', '--layer-bits', 'x'])).toThrow(/--layer-bits/);
    expect(() =>
      parseBenchArgs(['--model', 'm', '--data', 'd', '--layer-bits', 'a=8', '--keep-sensitive', '1']),
    ).toThrow(/either/);
  });
});

describe('configHash with the new fields', () => {
  it('is unchanged while cle and layerBits are neutral, and changes when they are not', async () => {
    const cfg = defaultConfig('snpe');
    // the config as the first release knew it: every field added since left out
    const old = Object.fromEntries(
      Object.entries(cfg).filter(([k]) => !CONFIG_FIELDS.some((f) => f.name === k && f.since > 1)),
    );
    const bytes = new TextEncoder().encode(canonicalJson(old));
    const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes);
    const before = [...new Uint8Array(digest)]
      .map((b) => b.toString(16).padStart(2, '0'))
      .join('')
      .slice(0, 16);
    expect(await configHash(cfg)).toBe(before);
    expect(await configHash({ ...cfg, cle: true })).not.toBe(before);
    expect(await configHash({ ...cfg, layerBits: { Conv_0: 8 } })).not.toBe(before);
  });
});

describe('per-layer weight bits in quantization', () => {
  it('a layerBits entry sets that layer’s bit width and wins over firstLast8bit', () => {
    const g = smallCnn({ seed: 2 });
    const cfg = resolveConfig({
      backend: 'academic',
      wBits: 4,
      wGranularity: 'per-tensor',
      layerBits: { dwconv: 6, conv1: 3 },
    });
    const points = findQuantPoints(g, cfg.placement);
    const byNode = new Map(points.weights.map((p) => [p.node, p]));
    expect(weightBitsOf(byNode.get('dwconv')!, cfg)).toBe(6);
    expect(weightBitsOf(byNode.get('conv1')!, cfg)).toBe(3); // first layer, but overridden
    expect(weightBitsOf(byNode.get('fc')!, cfg)).toBe(8); // last layer: firstLast8bit
    const q = quantizeWeights(g, points, cfg);
    const levels = (node: string) => new Set(q.find((w) => w.point.node === node)!.values).size;
    expect(levels('conv1')).toBeLessThanOrEqual(2 ** 3);
    expect(levels('dwconv')).toBeLessThanOrEqual(2 ** 6);
    expect(levels('dwconv')).toBeGreaterThan(2 ** 3);
  });
});

describe('sensitivity ranking and mixed-precision choices', () => {
  const L = (layer: string, params: number, disagreement: number, top1Drop: number): LayerSensitivity => ({
    layer,
    params,
    top1: 0.8 - top1Drop,
    top1Drop,
    disagreement,
  });
  const layers = [L('a', 100, 0.1, 0.02), L('b', 1000, 0.3, 0.05), L('c', 10, 0.3, 0.1), L('d', 50, 0, 0)];

  it('ranks by disagreement, then top-1 drop, then name', () => {
    expect(rankBySensitivity(layers).map((l) => l.layer)).toEqual(['c', 'b', 'a', 'd']);
  });

  it('keeps the k most sensitive at 8 bits and sizes the model from parameter counts', () => {
    const ranked = rankBySensitivity(layers);
    expect(keepMostSensitive(ranked, 2)).toEqual({ c: 8, b: 8 });
    expect(keepMostSensitive(ranked, 0)).toEqual({});
    expect(modelWeightBits(layers, 4)).toBe(1160 * 4);
    expect(modelWeightBits(layers, 4, { b: 8 })).toBe(1160 * 4 + 1000 * 4);
    // a layer's own width (firstLast8bit) counts unless layerBits overrides it
    expect(
      modelWeightBits(
        [
          { layer: 'x', params: 10, bits: 8 },
          { layer: 'y', params: 5 },
        ],
        4,
      ),
    ).toBe(100);
    expect(modelWeightBits([{ layer: 'x', params: 10, bits: 8 }], 4, { x: 2 })).toBe(20);
    expect(mixedPrecisionChoices(ranked, [0, 1, 3], 4)).toEqual([
      { k: 0, layers: [], sizeBits: 4640 },
      { k: 1, layers: ['c'], sizeBits: 4640 + 40 },
      { k: 3, layers: ['c', 'b', 'a'], sizeBits: 4640 + 40 + 4000 + 400 },
    ]);
  });
});

describe('layer bits: the whole entry must be NODE=BITS', () => {
  it('takes spaces around "=" and refuses a name with a space, text after the bits and three digits', () => {
    expect(parseLayerBits(' Conv_1 = 8 , Conv_2:4')).toEqual({ Conv_1: 8, Conv_2: 4 });
    for (const bad of ['Conv 1=8', 'Conv_1=8x', 'Conv_1=123'])
      expect(() => parseLayerBits(bad)).toThrow(`The layer bit width "${bad}" is not of the form NODE=BITS`);
  });

  it('refuses what is not a map of names to whole bit widths from 2 to 16, naming the entry', () => {
    for (const bad of [null, undefined, 'Conv_1=8', [], 0])
      expect(() => validateLayerBits(bad)).toThrow('layerBits must map layer (ONNX node) names to bit widths');
    expect(() => validateLayerBits({ '': 8 })).toThrow('A layer bit width names no layer');
    for (const v of [1, 17, 2.5, '8', NaN])
      expect(() => validateLayerBits({ Conv_1: v })).toThrow(
        `The bit width of layer Conv_1 must be a whole number from 2 to 16, got ${String(v)}.`,
      );
    expect(() => validateLayerBits({ Conv_1: 2, Conv_2: 16 })).not.toThrow();
  });
});
