import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../../src/cli/args.ts';
import { defaultConfig, resolveConfig } from '../../src/lib/config/resolve.ts';
import { configHash } from '../../src/lib/config/hash.ts';
import { weightKey } from '../../src/lib/experiment/quantize.ts';
import { parse, serialize } from '../../src/lib/config/url.ts';
import {
  learnsActivationRanges,
  PTQ_ACT_RANGES,
  PTQ_METHODS,
  usesEngineGradients,
} from '../../src/lib/config/names.ts';

describe('ptq config fields', () => {
  it('leave the hash of existing configs unchanged while neutral', async () => {
    // hashes computed before the fields existed
    expect(await configHash(defaultConfig('tensorrt'))).toBe('5e7806b04f6d698d');
    expect(await configHash(resolveConfig({ backend: 'academic', wBits: 4 }))).toBe('30e71d581c53af3f');
    expect(await configHash(resolveConfig({ backend: 'academic', wBits: 4, ptqIters: 77 }))).toBe('30e71d581c53af3f');
  });

  it('change the hash and the weight cache key when they change the weights', async () => {
    const base = resolveConfig({ backend: 'academic', wBits: 4 });
    const ada = resolveConfig({ backend: 'academic', wBits: 4, ptq: 'adaround' });
    const ada2 = resolveConfig({ backend: 'academic', wBits: 4, ptq: 'adaround', ptqIters: 100 });
    const gq = resolveConfig({ backend: 'academic', wBits: 4, ptq: 'gptq' });
    const gq2 = resolveConfig({ backend: 'academic', wBits: 4, ptq: 'gptq', ptqIters: 100 });
    const hashes = await Promise.all([base, ada, ada2, gq].map(configHash));
    expect(new Set(hashes).size).toBe(4);
    expect(await configHash(gq2)).toBe(await configHash(gq));
    // ptqIters is left out of the hash whenever AdaRound is not the method, whatever its value
    expect(await configHash(resolveConfig({ backend: 'academic', wBits: 4, ptqIters: 4321 }))).toBe(
      await configHash(base),
    );
    expect(new Set([base, ada, ada2, gq].map(weightKey)).size).toBe(4);
  });

  it('reject unknown methods and bad iteration counts with a sentence', () => {
    expect(() => resolveConfig({ ptq: 'lsq' as never })).toThrow(
      /The weight rounding \(ptq\) must be one of none, adaround, gptq, brecq, qdrop, got "lsq"\./,
    );
    expect(() => resolveConfig({ ptqIters: 0 })).toThrow(
      /The weight rounding steps \(adaround, brecq, qdrop\) \(ptqIters\) must be a whole number from 1 to 100000, got 0\./,
    );
  });

  it('come from the CLI as a sweepable list and round-trip through the URL', () => {
    const a = parseBenchArgs([
      '--model',
      'm.onnx',
      '--data',
      'd',
      '--ptq',
      'none,adaround,gptq',
      '--ptq-iters',
      '200',
      '--w-bits',
      '4,3',
    ]);
    expect(a.configs.map((c) => [c.wBits, c.ptq, c.ptqIters])).toEqual([
      [4, 'none', 200],
      [4, 'adaround', 200],
      [4, 'gptq', 200],
      [3, 'none', 200],
      [3, 'adaround', 200],
      [3, 'gptq', 200],
    ]);
    expect(() => parseBenchArgs(['--model', 'm', '--data', 'd', '--ptq', 'obq'])).toThrow(/Unknown --ptq "obq"/);
    const cfg = resolveConfig({ backend: 'academic', wBits: 4, ptq: 'adaround', ptqIters: 300 });
    const back = parse(serialize(cfg)).config;
    expect([back.ptq, back.ptqIters]).toEqual(['adaround', 300]);
    expect(serialize(defaultConfig('academic'))).not.toMatch(/ptq/);
  });
});

describe('ptqInputs', () => {
  const ada = (ptqInputs?: 'fp32' | 'quantized-prefix') =>
    resolveConfig({ backend: 'academic', wBits: 4, ptq: 'adaround', ...(ptqInputs ? { ptqInputs } : {}) });

  it('defaults to the quantized prefix (MQBench), and changes the hash and the weight key', async () => {
    expect(ada().ptqInputs).toBe('quantized-prefix');
    expect(await configHash(ada('fp32'))).not.toBe(await configHash(ada()));
    expect(weightKey(ada('fp32'))).not.toBe(weightKey(ada()));
    // without a reconstruction method it changes nothing
    const rtn = resolveConfig({ backend: 'academic', wBits: 4 });
    expect(await configHash({ ...rtn, ptqInputs: 'fp32' })).toBe(await configHash(rtn));
    expect(weightKey({ ...rtn, ptqInputs: 'fp32' })).toBe(weightKey(rtn));
  });

  it('keeps the hash that AdaRound and GPTQ configs had before the field existed (they used FP32 inputs)', async () => {
    // computed by the release before ptqInputs
    expect(await configHash(ada('fp32'))).toBe('492f4e9ed0adcd77');
    expect(await configHash(resolveConfig({ backend: 'academic', wBits: 4, ptq: 'gptq', ptqInputs: 'fp32' }))).toBe(
      '4bca02c37c5cf4bb',
    );
  });

  it('links: written whenever a method uses it, so links made before it existed keep FP32 inputs', () => {
    const made = serialize(ada());
    expect(made).toMatch(/ptqInputs=quantized-prefix/);
    expect(parse(made).config.ptqInputs).toBe('quantized-prefix');
    expect(parse(serialize(ada('fp32'))).config.ptqInputs).toBe('fp32');
    // an AdaRound link of the first release has no key: it meant FP32 inputs, and still does
    const old = parse('v=1&backend=academic&wBits=4&ptq=adaround');
    expect(old.notices).toEqual([]);
    expect(old.config.ptqInputs).toBe('fp32');
    // no method: no key, and the default stays for when the student picks one
    expect(serialize(defaultConfig('academic'))).not.toMatch(/ptqInputs/);
    expect(parse('v=1&backend=academic&wBits=4').config.ptqInputs).toBe('quantized-prefix');
    expect(parse('v=1&backend=academic&ptqInputs=nowhere').notices.join(' ')).toMatch(
      /ptqInputs to "nowhere", but it must be/,
    );
  });

  it('comes from the CLI as a sweepable list', () => {
    const a = parseBenchArgs([
      '--model',
      'm.onnx',
      '--data',
      'd',
      '--ptq',
      'gptq',
      '--ptq-inputs',
      'quantized-prefix,fp32',
    ]);
    expect(a.configs.map((c) => c.ptqInputs)).toEqual(['quantized-prefix', 'fp32']);
    expect(() => parseBenchArgs(['--model', 'm', '--data', 'd', '--ptq-inputs', 'int8'])).toThrow(/--ptq-inputs/);
  });
});

describe('block reconstruction config fields (ptqActRanges, ptqDrop)', () => {
  it('learned ranges and engine gradients: the whole table of method × ptqActRanges', () => {
    // L: learns activation step sizes, G: runs on engine gradients (block-recon.ts)
    const want: Record<string, string> = {
      'none auto': '--',
      'none learned': '--',
      'none calibrated': '--',
      'adaround auto': '--',
      'adaround learned': 'LG',
      'adaround calibrated': '--',
      'gptq auto': '--',
      'gptq learned': '--',
      'gptq calibrated': '--',
      'brecq auto': 'LG',
      'brecq learned': 'LG',
      'brecq calibrated': '-G',
      'qdrop auto': 'LG',
      'qdrop learned': 'LG',
      'qdrop calibrated': '-G',
    };
    for (const ptq of PTQ_METHODS)
      for (const ptqActRanges of PTQ_ACT_RANGES) {
        const c = { ptq, ptqActRanges };
        const got = `${learnsActivationRanges(c) ? 'L' : '-'}${usesEngineGradients(c) ? 'G' : '-'}`;
        expect(got, `${ptq} ${ptqActRanges}`).toBe(want[`${ptq} ${ptqActRanges}`]);
      }
  });

  it('keep every older config hash, and count only where their method uses them', async () => {
    const ada = resolveConfig({ backend: 'academic', wBits: 4, ptq: 'adaround' });
    // 'auto' is AdaRound's old behaviour (calibrated ranges): neutral, out of the hash
    expect(ada.ptqActRanges).toBe('auto');
    expect(learnsActivationRanges(ada)).toBe(false);
    expect(await configHash({ ...ada, ptqDrop: 10 })).toBe(await configHash(ada));
    expect(await configHash({ ...ada, ptqActRanges: 'calibrated' })).not.toBe(await configHash(ada));
    expect(weightKey({ ...ada, ptqActRanges: 'learned' })).not.toBe(weightKey(ada));
    const gq = resolveConfig({ backend: 'academic', wBits: 4, ptq: 'gptq' });
    expect(await configHash({ ...gq, ptqActRanges: 'learned' })).toBe(await configHash(gq));
    expect(learnsActivationRanges({ ...gq, ptqActRanges: 'learned' })).toBe(false);
  });

  it('learn ranges by default for BRECQ and QDrop; the drop share counts for QDrop only', async () => {
    const q = resolveConfig({ backend: 'academic', wBits: 4, aBits: 4, ptq: 'qdrop' });
    const b = resolveConfig({ backend: 'academic', wBits: 4, aBits: 4, ptq: 'brecq' });
    expect(learnsActivationRanges(q) && learnsActivationRanges(b)).toBe(true);
    expect(learnsActivationRanges({ ...b, ptqActRanges: 'calibrated' })).toBe(false);
    expect(q.ptqDrop).toBe(50);
    expect(weightKey({ ...q, ptqDrop: 25 })).not.toBe(weightKey(q));
    expect(weightKey({ ...b, ptqDrop: 25 })).toBe(weightKey(b));
    expect(await configHash({ ...b, ptqDrop: 25 })).toBe(await configHash(b));
    expect(await configHash({ ...q, ptqDrop: 25 })).not.toBe(await configHash(q));
    expect(new Set([q, b, { ...b, ptqIters: 1000 }].map(weightKey)).size).toBe(3);
    const link = serialize({ ...q, ptqDrop: 30, ptqActRanges: 'calibrated' });
    expect(link).toMatch(/ptqDrop=30/);
    expect(parse(link).config).toMatchObject({ ptq: 'qdrop', ptqDrop: 30, ptqActRanges: 'calibrated' });
    expect(() => resolveConfig({ ptq: 'qdrop', ptqDrop: 101 })).toThrow(/ptqDrop/);
  });

  it('come from the CLI as sweepable lists', () => {
    const a = parseBenchArgs([
      '--model',
      'm.onnx',
      '--data',
      'd',
      '--ptq',
      'brecq,qdrop',
      '--ptq-act-ranges',
      'learned,calibrated',
      '--ptq-drop',
      '50',
    ]);
    expect(a.configs.map((c) => `${c.ptq}/${c.ptqActRanges}`)).toEqual([
      'brecq/learned',
      'brecq/calibrated',
      'qdrop/learned',
      'qdrop/calibrated',
    ]);
  });
});
