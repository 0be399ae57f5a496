/**
 * One model identity for the CLI and the browser: the same file gets the same model id
 * (`sha256:<full hex>` for a file the registry does not know) on both paths, so a config
 * made by the CLI has the same configHash as the one the browser builds and restores
 * from a share link. Also the shared sniffing and download checks.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../../src/cli/args.ts';
import { cliModel } from '../../src/cli/bench.ts';
import { configHash } from '../../src/lib/config/hash.ts';
import { identifyModel, sha256Hex, sniffOnnx, verifyExpected } from '../../src/lib/models/identify.ts';
import { parseModel } from '../../src/lib/onnx/model.ts';
import { QpError } from '../../src/lib/util/errors.ts';
import { parse, serialize } from '../../src/lib/config/url.ts';
import { createQuantApi } from '../../workers/api.ts';

const FIXTURE = join(import.meta.dirname, '../fixtures/bad-inputs/valid-tiny.onnx'); // [N,3,32,32] → [N,10]
const bytes = new Uint8Array(readFileSync(FIXTURE));

async function workerModelId(b: Uint8Array, name: string): Promise<string> {
  const storage = { putModel: async () => undefined, getModel: async () => undefined };
  const api = createQuantApi({ storage: storage as never });
  const res = await api.loadModel({ kind: 'bytes', bytes: b, name });
  if (!res.ok) throw new Error(res.error.message);
  return res.value.id;
}

describe('model identity', () => {
  it('sha256Hex is the standard sha256, also without Web Crypto (a page outside a secure context)', async () => {
    const want = createHash('sha256').update(bytes).digest('hex');
    expect(await sha256Hex(bytes)).toBe(want);
    const subtle = Object.getOwnPropertyDescriptor(globalThis.crypto, 'subtle');
    Object.defineProperty(globalThis.crypto, 'subtle', { value: undefined, configurable: true });
    try {
      expect(globalThis.crypto.subtle).toBeUndefined();
      expect(await sha256Hex(bytes)).toBe(want);
      expect(await sha256Hex(new Uint8Array(0))).toBe(createHash('sha256').digest('hex'));
    } finally {
      if (subtle) Object.defineProperty(globalThis.crypto, 'subtle', subtle);
      else delete (globalThis.crypto as { subtle?: unknown }).subtle;
    }
    expect(globalThis.crypto.subtle).toBeDefined();
  });

  it('the CLI and the worker give a user file the same id: the full sha256', async () => {
    const full = createHash('sha256').update(bytes).digest('hex');
    const cli = await cliModel(bytes, parseModel(bytes), 10, 0);
    const worker = await workerModelId(bytes, 'valid-tiny.onnx');
    expect(cli.id).toBe(`sha256:${full}`);
    expect(worker).toBe(cli.id);
  });

  it("a config made by the CLI has the same configHash as the browser's, also after a share link", async () => {
    const cli = await cliModel(bytes, parseModel(bytes), 10, 0);
    const worker = await workerModelId(bytes, 'valid-tiny.onnx');
    const args = parseBenchArgs([
      '--model',
      FIXTURE,
      '--data',
      'd',
      '--backend',
      'snpe',
      '--a-observer',
      'mse',
      '--w-bits',
      '4',
    ]);
    // what bench.ts main() runs: the parsed config named after the model and data set
    const cliCfg = { ...args.configs[0], model: cli.id, dataset: 'imagenet-sample', eval: 100 };
    const browserCfg = { ...cliCfg, model: worker };
    const restored = parse(serialize(browserCfg)).config;
    expect(restored.model).toBe(cli.id);
    const h = await configHash(cliCfg);
    expect(await configHash(browserCfg)).toBe(h);
    expect(await configHash(restored)).toBe(h);
    // and the hash does depend on the model id
    expect(await configHash({ ...cliCfg, model: `sha256:${'0'.repeat(64)}` })).not.toBe(h);
  });

  it('labels a user model by its file name, else "user model"; preprocessing and input size as asked', async () => {
    const g = parseModel(bytes);
    expect((await identifyModel(bytes, g, 10, { name: 'mine.onnx' })).spec.label).toBe('mine.onnx');
    const s = (await identifyModel(bytes, g, 10, { inputSize: 48 })).spec;
    expect(s.label).toBe('user model');
    expect(s.inputSize).toBe(48);
    expect(s.preprocess.interpolation).toBe('bilinear');
  });

  it('sniffing refuses empty files, web pages, LFS pointers and non-ONNX bytes with full sentences', () => {
    const code = (b: Uint8Array) => {
      try {
        sniffOnnx(b, 'm.onnx');
        return null;
      } catch (e) {
        expect(e).toBeInstanceOf(QpError);
        expect((e as QpError).message).toMatch(/\.$/);
        return (e as QpError).code;
      }
    };
    const text = (s: string) => new TextEncoder().encode(s);
    expect(code(new Uint8Array(0))).toBe('MODEL_EMPTY');
    expect(code(text('<!DOCTYPE html><html></html>'))).toBe('MODEL_NOT_ONNX');
    expect(code(text('version https://git-lfs.github.com/spec/v1\n'))).toBe('MODEL_NOT_ONNX');
    expect(code(Uint8Array.of(0xff, 0xd8, 0xff))).toBe('MODEL_NOT_ONNX');
    expect(code(bytes)).toBeNull();
  });

  it('verifyExpected refuses a file of another size or hash', async () => {
    const sha = await sha256Hex(bytes);
    expect(() => verifyExpected(bytes, sha, { bytes: bytes.byteLength, sha256: sha }, 'm')).not.toThrow();
    expect(() => verifyExpected(bytes, sha, { bytes: bytes.byteLength + 1, sha256: sha }, 'm')).toThrow(
      /not the expected one/,
    );
    expect(() => verifyExpected(bytes, sha, { bytes: bytes.byteLength, sha256: '0'.repeat(64) }, 'm')).toThrow(QpError);
  });
});
