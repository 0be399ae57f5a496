/**
 * What a config and a link reader refuse or keep, case by case: resolveConfig's refusals and
 * merges (config/resolve.ts), the link's extras and the notices a reader of a garbled link
 * is shown (config/link.ts), and the "Try it" experiment (config/try-it.ts).
 */
import { describe, expect, it } from 'vitest';
import { parseLink, serializeLink, fingerprintImages } from '../../src/lib/config/link.ts';
import {
  defaultConfig,
  overriddenFields,
  presetFields,
  resolveConfig,
  validateConfig,
} from '../../src/lib/config/resolve.ts';
import { TRY_IT } from '../../src/lib/config/try-it.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import { IMAGE_SET_REGISTRY } from '../../src/lib/data/image-sets.ts';
import { MODEL_REGISTRY } from '../../src/lib/models/registry.ts';
import { QpError } from '../../src/lib/util/errors.ts';

const SHA = 'ab'.repeat(32);
const FP = `100-${'0123456789abcdef'}`;

describe('resolveConfig and validateConfig', () => {
  it('refuses an unknown backend, naming the ones there are', () => {
    const f = () => resolveConfig({ backend: 'tflite' as never });
    expect(f).toThrow(QpError);
    expect(f).toThrow(/^Unknown backend "tflite". Choose one of: academic, tensorrt, snpe,/);
  });

  it('merges a partial placement into the preset’s', () => {
    const c = resolveConfig({ backend: 'academic', placement: { add: true } as never });
    expect(c.placement).toEqual({ conv: true, gemm: true, add: true, pool: false, concat: false, modelInput: false });
  });

  it('keeps its own copy of a layer-bits map', () => {
    const bits = { Conv_0: 8 };
    const c = resolveConfig({ backend: 'academic', layerBits: bits });
    bits.Conv_0 = 4;
    expect(c.layerBits).toEqual({ Conv_0: 8 });
  });

  it('hands out copies of the preset’s placement, never the table itself', () => {
    const p = presetFields('academic');
    try {
      p.placement.add = true;
    } catch {
      // a frozen table refuses the write: as good
    }
    expect(presetFields('academic').placement.add).toBe(false);
    expect(defaultConfig('academic').placement.add).toBe(false);
  });

  it('lists the fields that differ from the backend’s preset', () => {
    expect(overriddenFields(resolveConfig({ backend: 'tensorrt' }))).toEqual([]);
    expect(overriddenFields(resolveConfig({ backend: 'tensorrt', aBits: 4, wBits: 4 }))).toEqual(['wBits', 'aBits']);
    expect(overriddenFields(resolveConfig({ backend: 'academic', placement: { add: true } as never }))).toEqual([
      'placement',
    ]);
  });

  const valid = resolveConfig({ backend: 'tensorrt' });
  const refuse = (over: Record<string, unknown>) => () => validateConfig({ ...valid, ...over } as ExperimentConfig);

  it('refuses another config version, a config without placement rules and one without a model', () => {
    expect(refuse({ v: 999 })).toThrow(/^Config version 999 is not supported \(expected \d+\)\.$/);
    expect(refuse({ placement: undefined })).toThrow(
      /^The config has no placement rules; reset it to a backend preset\.$/,
    );
    expect(refuse({ placement: 'all' })).toThrow(/no placement rules/);
    expect(refuse({ model: '' })).toThrow(
      /^The config names no model: choose one from the model list or open an ONNX file\.$/,
    );
  });

  it('quotes a bad text value, clipped at 40 characters', () => {
    const forty = 'x'.repeat(40);
    expect(refuse({ backend: forty })).toThrow(`got "${forty}".`);
    expect(refuse({ backend: `${forty}yz` })).toThrow(`got "${forty}…".`);
    expect(refuse({ wBits: 99 })).toThrow(/\(wBits\) must be a whole number from 2 to 16, got 99\.$/);
  });

  it('refuses the "imported" observer for weights or activations unless an imported model is named', () => {
    const msg = /"imported" observer .* names none \(importedScheme is "none"\)/;
    expect(refuse({ wObserver: 'imported' })).toThrow(msg);
    expect(refuse({ aObserver: 'imported' })).toThrow(msg);
    expect(refuse({ wObserver: 'imported', aObserver: 'imported', importedScheme: `sha256:${SHA}` })).not.toThrow();
  });
});

describe('the "Try it" experiment', () => {
  it('names a registry model and a registry image set and resolves as is', () => {
    expect(MODEL_REGISTRY.map((m) => m.id)).toContain(TRY_IT.model);
    expect(IMAGE_SET_REGISTRY.map((s) => s.id)).toContain(TRY_IT.dataset);
    const c = resolveConfig(TRY_IT);
    expect([c.model, c.dataset, c.backend, c.calib, c.eval, c.seed]).toEqual([
      'mobilenet-v2',
      'imagenet-sample',
      'tensorrt',
      32,
      176,
      0,
    ]);
  });
});

describe('link extras', () => {
  it('reads a data fingerprint only whole', () => {
    expect(fingerprintImages(FP)).toBe(100);
    expect(fingerprintImages(`x${FP}`)).toBeUndefined();
    expect(fingerprintImages(`${FP}0`)).toBeUndefined();
  });

  it('reads a model’s sha256 only whole', () => {
    expect(parseLink(`msha=${SHA}`).extras.model).toEqual({ sha256: SHA });
    for (const bad of [`0${SHA}`, `${SHA}0`, SHA.toUpperCase()]) {
      const p = parseLink(`msha=${bad}`);
      expect(p.extras.model).toBeUndefined();
      expect(p.notices).toEqual([
        'The link names its model by a sha256 that is not 64 hexadecimal digits; it was ignored, so choose the model yourself.',
      ]);
    }
  });

  it('reads every kind of source, and says so when one is garbled', () => {
    const model = (src: string) => parseLink(`msha=${SHA}&msrc=${src}`);
    expect(model('file:m.onnx').extras.model?.source).toEqual({ kind: 'file', name: 'm.onnx' });
    expect(model('dev:m.onnx').extras.model?.source).toEqual({ kind: 'dev', name: 'm.onnx' });
    for (const bad of ['drive:m.onnx', ':m.onnx', 'file:', 'file']) {
      const p = model(bad);
      expect(p.extras.model, bad).toEqual({ sha256: SHA });
      expect(p.notices, bad).toEqual([
        'The link says where its model came from in a form this version cannot read; the model is looked up by its sha256 only.',
      ]);
    }
    const data = (src: string) => parseLink(`dfp=${FP}&dsrc=${src}`);
    expect(data('registry:imagenet-sample').extras.data?.source).toEqual({ kind: 'registry', id: 'imagenet-sample' });
    expect(data('folder:my+images').extras.data?.source).toEqual({ kind: 'folder', name: 'my images' });
    const p = data('file:x');
    expect(p.extras.data).toEqual({ fingerprint: FP });
    expect(p.notices).toEqual([
      'The link says where its images came from in a form this version cannot read; choose the images yourself.',
    ]);
    const fp = parseLink('dfp=12-nothex');
    expect(fp.extras.data).toBeUndefined();
    expect(fp.notices).toEqual([
      'The link names its images by a fingerprint this version cannot read; it was ignored, so choose the images yourself.',
    ]);
  });

  it('takes a source of up to 2,000 characters', () => {
    const at = (n: number) => `url:https://m.example/${'a'.repeat(n - 'url:https://m.example/'.length)}`;
    expect(parseLink(`msha=${SHA}&msrc=${at(2000)}`).extras.model?.source).toBeDefined();
    expect(parseLink(`msha=${SHA}&msrc=${at(2001)}`).extras.model?.source).toBeUndefined();
  });

  it('writes the engine only when it is not Auto, and reads what it wrote', () => {
    const c = defaultConfig();
    expect(serializeLink(c, [], { engine: 'auto' })).not.toMatch(/engine=/);
    const h = serializeLink(c, [], { engine: 'wasm', analyze: 32, lesson: 'bit-width', view: 'graph' });
    expect(h).toMatch(/&engine=wasm&analyze=32&lesson=bit-width&view=graph$/);
    expect(parseLink(`#${h}`).extras).toEqual({ engine: 'wasm', analyze: 32, lesson: 'bit-width', view: 'graph' });
  });

  it('tells a reader which value it dropped, clipped to 20 characters', () => {
    const long = 'q'.repeat(30);
    const q20 = 'q'.repeat(20);
    expect(parseLink(`engine=${long}`).notices).toEqual([
      `The link asks for engine "${q20}", which is not auto, webgpu, wasm; Auto is used.`,
    ]);
    expect(parseLink(`analyze=${long}`).notices).toEqual([
      `The link asks for an analysis of "${q20}" images, which is not a whole number from 1 to 10000; the analysis is off.`,
    ]);
    expect(parseLink(`view=${long}`).notices).toEqual([
      `The link asks to show the section "${q20}", which is not one of learn, analysis, graph, history; the first is shown.`,
    ]);
    expect(parseLink(`lesson=${'Q'.repeat(50)}`).notices).toEqual([
      `The link names a lesson "${'Q'.repeat(40)}" that is not a lesson id; no lesson is opened.`,
    ]);
  });

  it('takes a lesson id of up to 80 characters', () => {
    const id = (n: number) => `a-${'b'.repeat(n - 2)}`;
    expect(parseLink(`lesson=${id(80)}`).extras.lesson).toBe(id(80));
    expect(parseLink(`lesson=${id(81)}`).extras.lesson).toBeUndefined();
  });

  it('reads a key without a value as an empty value', () => {
    expect(parseLink('view').notices).toEqual([
      'The link asks to show the section "", which is not one of learn, analysis, graph, history; the first is shown.',
    ]);
    expect(parseLink('view&engine=wasm').extras.engine).toBe('wasm');
  });

  it('keeps the config part’s notices beside its own, and reads no hash as the default', () => {
    const p = parseLink(`wBits=99&msha=${SHA.slice(2)}`);
    expect(p.notices).toEqual([
      'The link has no settings version; it was read as version 1, and settings that could not be read use their defaults.',
      'The link sets wBits to "99", but it must be an integer from 2 to 16; the default (8) was used.',
      'The link names its model by a sha256 that is not 64 hexadecimal digits; it was ignored, so choose the model yourself.',
    ]);
    const none = parseLink(undefined as never);
    expect(none.notices).toEqual([]);
    expect(none.extras).toEqual({});
    expect(parseLink('#').config).toEqual(parseLink('').config);
    expect(parseLink(`#msha=${SHA}`).extras.model).toEqual({ sha256: SHA });
    expect(parseLink(`&&msha=${SHA}&&`).notices).toEqual(parseLink(`msha=${SHA}`).notices);
  });
});
