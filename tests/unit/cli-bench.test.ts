/**
 * The bench CLI's argument handling and its one-line errors: bad arguments, a missing
 * file and a non-ONNX file must give `error [CODE]: sentence`, no stack trace, and a
 * non-zero exit code. (Full runs are covered by the integration tests.)
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseBenchArgs, withImageCount } from '../../src/cli/args.ts';
import { main } from '../../src/cli/bench.ts';
import { QpError } from '../../src/lib/util/errors.ts';

describe('parseBenchArgs', () => {
  it('multiplies comma lists into the cartesian product of resolved configs', () => {
    const a = parseBenchArgs([
      '--model',
      'm.onnx',
      '--data',
      'd',
      '--backend',
      'tensorrt,snpe',
      '--a-observer',
      'minmax,mse',
      '--w-bits',
      '8,4',
    ]);
    expect(a.configs).toHaveLength(8);
    const trt4mse = a.configs.find((c) => c.backend === 'tensorrt' && c.wBits === 4 && c.aObserver === 'mse')!;
    // fields the flags don't name come from the backend preset
    expect(trt4mse.wGranularity).toBe('per-channel');
    expect(trt4mse.wNarrowRange).toBe(true);
    const snpe = a.configs.find((c) => c.backend === 'snpe')!;
    expect(snpe.wSymmetric).toBe(false);
    expect(a.configs.every((c) => c.eval === 'rest' && c.calib === 128 && c.seed === 0)).toBe(true);
  });

  it('resolves "rest of the images" once the image count is known, and keeps a given count', () => {
    const [rest] = parseBenchArgs(['--model', 'm', '--data', 'd', '--calib', '100']).configs;
    expect(rest.eval).toBe('rest');
    expect(withImageCount(rest, 1000).eval).toBe(900);
    const [given] = parseBenchArgs(['--model', 'm', '--data', 'd', '--eval', '64']).configs;
    expect(withImageCount(given, 1000).eval).toBe(64);
    expect(parseBenchArgs(['--model', 'm', '--data', 'd', '--eval', '64,rest']).configs.map((c) => c.eval)).toEqual([
      64,
      'rest',
    ]);
  });

  it("uses each backend's default observers unless overridden", () => {
    const a = parseBenchArgs(['--model', 'm', '--data', 'd', '--backend', 'tensorrt,ppl-cuda']);
    expect(a.configs.map((c) => c.aObserver)).toEqual(['ema-minmax', 'minmax']);
  });

  it.each([
    [['--data', 'd'], /--model/],
    [['--model', 'm'], /--data/],
    [['--model', 'm', '--data', 'd', '--backend', 'tpu'], /Unknown --backend "tpu"/],
    [['--model', 'm', '--data', 'd', '--w-bits', '1'], /must be a whole number from 2 to 16, got "1"/],
    [['--model', 'm', '--data', 'd', '--a-observer', 'magic'], /Unknown --a-observer/],
    [['--model', 'm', '--data', 'd', '--calib', 'x'], /whole number/],
    [['--model', 'm', '--data', 'd', '--frobnicate'], /frobnicate/],
  ])('rejects %j with a clear ARG_INVALID message', (argv, msg) => {
    let err: unknown;
    try {
      parseBenchArgs(argv as string[]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(QpError);
    expect((err as QpError).code).toBe('ARG_INVALID');
    expect((err as QpError).message).toMatch(msg);
  });
});

describe('bench main: one-line errors and exit codes', () => {
  let stderr: string[];
  beforeEach(() => {
    stderr = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
      stderr.push(String(s));
      return true;
    });
  });
  afterEach(() => vi.restoreAllMocks());

  const oneLine = () => {
    const text = stderr.join('');
    expect(text.trim().split('\n')).toHaveLength(1);
    expect(text).not.toMatch(/\n\s+at /); // no stack trace
    return text;
  };

  it('bad argument', async () => {
    expect(await main(['--model', 'x.onnx', '--data', 'd', '--w-bits', '99'])).not.toBe(0);
    expect(oneLine()).toMatch(/^error \[ARG_INVALID\]: --w-bits must be a whole number from 2 to 16, got "99"/);
  });

  it('missing model file', async () => {
    expect(await main(['--model', '/nonexistent/model.onnx', '--data', 'd'])).not.toBe(0);
    expect(oneLine()).toMatch(/^error \[FILE_NOT_FOUND\]: Model file "\/nonexistent\/model.onnx" does not exist/);
  });

  it('a file that is not ONNX', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qp-cli-'));
    const f = join(dir, 'notes.onnx');
    writeFileSync(f, 'these are my notes, not a network\n');
    expect(await main(['--model', f, '--data', dir])).not.toBe(0);
    expect(oneLine()).toMatch(
      /^error \[MODEL_NOT_ONNX\]: ".*notes\.onnx" does not look like an ONNX model \(it starts with byte 0x74\)\. Pick an \.onnx file\.\n$/,
    );
  });
});
