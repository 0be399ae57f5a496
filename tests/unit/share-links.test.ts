// Share links: the data-set fingerprint, the link codec (config + model/data/engine/analysis),
// the CLI's links, and CLI data folders made of symbolic links.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadImageFolder } from '../../src/lib/data/dataset.node.ts';
import { datasetFingerprint, fingerprintOf } from '../../src/lib/data/fingerprint.ts';
import { fingerprintImages } from '../../src/lib/config/link.ts';
import { parseLink, serializeLink } from '../../src/lib/config/link.ts';
import { defaultConfig } from '../../src/lib/config/resolve.ts';
import { configHash } from '../../src/lib/config/hash.ts';
import { cliLink, cliModelSource } from '../../src/cli/links.ts';
import { MODEL_REGISTRY } from '../../src/lib/models/registry.ts';

const SHA = 'f00130594d83447f5f46429a6c3b2f886036567cb61fe573fd171e7da07eab04';

describe('datasetFingerprint', () => {
  it('is the count and a hash of sorted names and labels, independent of order', async () => {
    const a = await datasetFingerprint([
      { id: 'n01440764.JPEG', label: 0 },
      { id: 'n01443537.JPEG', label: 1 },
    ]);
    const b = await datasetFingerprint([
      { id: 'n01443537.JPEG', label: 1 },
      { id: 'n01440764.JPEG', label: 0 },
    ]);
    expect(a).toBe(b);
    expect(a).toMatch(/^2-[0-9a-f]{16}$/);
    expect(fingerprintImages(a)).toBe(2);
    // a label or a name that differs changes it
    expect(
      await datasetFingerprint([
        { id: 'n01440764.JPEG', label: 1 },
        { id: 'n01443537.JPEG', label: 1 },
      ]),
    ).not.toBe(a);
    expect(
      await datasetFingerprint([
        { id: 'x/n01440764.JPEG', label: 0 },
        { id: 'n01443537.JPEG', label: 1 },
      ]),
    ).not.toBe(a);
    expect(fingerprintImages('12-xyz')).toBeUndefined();
  });
});

describe('share link codec', () => {
  it('round-trips model, data, engine and analysis beside the config', () => {
    const config = { ...defaultConfig('snpe'), wBits: 4, model: `sha256:${SHA}` };
    const hash = serializeLink(config, [], {
      model: { sha256: SHA, source: { kind: 'url', url: 'https://example.org/m/mobilenet v2.onnx' } },
      data: { fingerprint: '1000-0123456789abcdef', source: { kind: 'folder', name: 'my images' } },
      engine: 'wasm',
      analyze: 32,
    });
    expect(hash).toContain(`msha=${SHA}`);
    expect(hash).toContain('msrc=url:https://example.org/m/mobilenet%20v2.onnx');
    const p = parseLink(`#${hash}`);
    expect(p.notices).toEqual([]);
    expect(p.config).toEqual(config);
    expect(p.extras).toEqual({
      model: { sha256: SHA, source: { kind: 'url', url: 'https://example.org/m/mobilenet v2.onnx' } },
      data: { fingerprint: '1000-0123456789abcdef', source: { kind: 'folder', name: 'my images' } },
      engine: 'wasm',
      analyze: 32,
    });
  });

  it('drops garbled extras with a notice instead of guessing', () => {
    const p = parseLink('#v=1&backend=tensorrt&msha=abc&dfp=zz&engine=tpu&analyze=0');
    expect(p.extras).toEqual({});
    expect(p.notices).toHaveLength(4);
    expect(p.notices.join(' ')).toMatch(/sha256.*64 hexadecimal/);
  });

  it('an old link without extras reads as before', () => {
    const p = parseLink('#v=1&backend=snpe&wBits=4');
    expect(p.extras).toEqual({});
    expect(p.notices).toEqual([]);
    expect(p.config.wBits).toBe(4);
  });
});

describe('CLI links', () => {
  it('name a registry model only when the bytes are one of its downloads', () => {
    const mn = MODEL_REGISTRY.find((e) => e.id === 'mobilenet-v2')!;
    const d = mn.downloads[0].sha256;
    expect(cliModelSource({ modelPath: '/x/m.onnx', modelSha256: d, modelId: 'mobilenet-v2' })).toEqual({
      kind: 'registry',
      id: 'mobilenet-v2',
    });
    // the shared dev copy: listed as the same weights, but a different file — named by file
    expect(
      cliModelSource({ modelPath: '/data/models/mobilenetv2-7-fp32.onnx', modelSha256: SHA, modelId: 'mobilenet-v2' }),
    ).toEqual({
      kind: 'file',
      name: 'mobilenetv2-7-fp32.onnx',
    });
  });

  it('open to the same config (same configHash) in the app', async () => {
    const config = {
      ...defaultConfig('tensorrt'),
      calib: 16,
      eval: 32,
      model: `sha256:${SHA}`,
      dataset: 'imagenet-sample',
    };
    const url = cliLink(config, {
      modelPath: 'm.onnx',
      modelSha256: SHA,
      modelId: config.model,
      dataSource: { kind: 'folder', name: 'imagenet-sample' },
      fingerprint: '1000-0123456789abcdef',
    });
    expect(url.startsWith('#v=1&')).toBe(true);
    const p = parseLink(url);
    expect(await configHash(p.config)).toBe(await configHash(config));
    expect(p.extras.data).toEqual({
      fingerprint: '1000-0123456789abcdef',
      source: { kind: 'folder', name: 'imagenet-sample' },
    });
    expect(p.extras.engine).toBe('wasm');
  });
});

describe('CLI data folders of symbolic links', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'qp-links-'));
    const real = path.join(root, 'real');
    mkdirSync(path.join(real, 'n01443537'), { recursive: true });
    writeFileSync(path.join(real, 'n01440764.JPEG'), 'a');
    writeFileSync(path.join(real, 'n01443537_1.JPEG'), 'b');
    writeFileSync(path.join(real, 'n01443537', 'x.JPEG'), 'c');
    const linked = path.join(root, 'linked');
    mkdirSync(linked);
    writeFileSync(path.join(linked, 'n01440764_plain.JPEG'), 'd');
    symlinkSync(path.join(real, 'n01440764.JPEG'), path.join(linked, 'n01440764.JPEG'));
    symlinkSync(path.join(real, 'n01443537_1.JPEG'), path.join(linked, 'n01443537_1.JPEG'));
    symlinkSync(path.join(real, 'n01443537'), path.join(linked, 'n01443537')); // a linked folder
    symlinkSync(path.join(real, 'missing.JPEG'), path.join(linked, 'n01440764_broken.JPEG')); // broken
    writeFileSync(
      path.join(root, 'imagenet_class_index.json'),
      JSON.stringify({ '0': ['n01440764', 'tench'], '1': ['n01443537', 'goldfish'] }),
    );
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('follows linked files and folders, skips broken links', async () => {
    const ds = await loadImageFolder(path.join(root, 'linked'));
    expect(ds.items.map((i) => [i.id, i.label])).toEqual([
      ['n01440764.JPEG', 0],
      ['n01440764_plain.JPEG', 0],
      ['n01443537/x.JPEG', 1],
      ['n01443537_1.JPEG', 1],
    ]);
    expect(new TextDecoder().decode(await ds.items[0].read())).toBe('a');
    expect(new TextDecoder().decode(await ds.items[2].read())).toBe('c');
    expect(await fingerprintOf(ds)).toMatch(/^4-/);
  });
});

describe('verifyLinkedModel', () => {
  it('refuses a file with another sha256, naming both', async () => {
    const { verifyLinkedModel } = await import('../../src/lib/models/identify.ts');
    expect(() => verifyLinkedModel(SHA, SHA, 'mobilenet.onnx')).not.toThrow();
    const other = 'c0c3f76d' + SHA.slice(8);
    expect(() => verifyLinkedModel(other, SHA, 'mobilenet.onnx')).toThrow(
      /its sha256 is c0c3f76d.*the link needs f00130594d83/,
    );
    try {
      verifyLinkedModel(other, SHA, 'mobilenet.onnx');
    } catch (e) {
      expect((e as { code: string }).code).toBe('MODEL_SHA_MISMATCH');
    }
  });
});
