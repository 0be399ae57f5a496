import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../../src/cli/args.ts';
import { defaultConfig, resolveConfig } from '../../src/lib/config/resolve.ts';
import { configHash } from '../../src/lib/config/hash.ts';
import { weightKey } from '../../src/lib/experiment/quantize.ts';
import { parse, serialize } from '../../src/lib/config/url.ts';

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
    expect(() => resolveConfig({ ptq: 'brecq' as never })).toThrow(
      /The weight rounding \(ptq\) must be one of none, adaround, gptq, got "brecq"\./,
    );
    expect(() => resolveConfig({ ptqIters: 0 })).toThrow(
      /The weight rounding steps \(adaround\) \(ptqIters\) must be a whole number from 1 to 100000, got 0\./,
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
