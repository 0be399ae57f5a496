/**
 * "Check on integer kernels" state (state/deploy-check.svelte.ts) against a fake QuantApi:
 * the preset table's configs keep the result's bits, model and split and take each
 * preset's own scheme; a check is kept by config hash, an error is shown as data, and
 * the rows say what the numbers are (gap sign, 'none' when no layer diverged, why a
 * config could not be deployed).
 */
import { describe, expect, it, vi } from 'vitest';
import type { Remote } from 'comlink';
import {
  DeployCheckState,
  DEPLOYABLE_PRESETS,
  deployCheckRow,
  presetConfigs,
} from '../../src/lib/state/deploy-check.svelte.ts';
import { BACKEND_PRESETS } from '../../src/lib/config/presets.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import type { QuantApi } from '../../src/lib/protocol/api.ts';
import type { DeployCheck, DeployProgress } from '../../src/lib/protocol/deploy.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';

/** what the preset table keeps of the result */
const KEPT = { model: 'mobilenet-v2', dataset: 'imagenet-sample', wBits: 8, aBits: 8, calib: 32, eval: 64, seed: 3 };
const base = resolveConfig({ backend: 'openvino', ...KEPT, biasCorrection: true });

function check(config: ExperimentConfig, over: Partial<DeployCheck> = {}): DeployCheck {
  return {
    configHash: `h-${config.backend}`,
    config,
    simulated: { top1: 0.8, top5: 0.95 },
    images: 64,
    engine: 'onnxruntime-web 1.30.0 wasm, 1 threads',
    deployed: {
      top1: 0.75,
      top5: 0.94,
      agreement: 0.9375,
      firstDivergence: {
        layer: 'Conv_2',
        label: 'block 1 · depthwise 3×3',
        tensor: '474',
        maxSteps: 5,
        share: 0.0032,
        reasons: ['requantization rounding upstream'],
      },
      firstDifference: null,
      divergenceImages: 4,
      integerOps: 64,
      floatOps: ['Gemm_0'],
      speed: { fp32MsPerImage: 10, deployedMsPerImage: 6, ratio: 0.6, rounds: 3, batch: 16 },
    },
    ...over,
  };
}

describe('presetConfigs', () => {
  it('one config per deployable preset, at the result’s bits, model and split, with the preset’s scheme', () => {
    const cs = presetConfigs(base);
    expect(cs.map((c) => c.backend)).toEqual([...DEPLOYABLE_PRESETS]);
    for (const c of cs) {
      expect(c).toMatchObject(KEPT);
      expect(c.wObserver).toBe(BACKEND_PRESETS[c.backend].wObserver);
      // fixes of the result are not carried over: the rows compare presets only
      expect(c.biasCorrection).toBe(false);
    }
  });
});

describe('deployCheckRow', () => {
  it('formats the numbers, the signed gap and the first divergence', () => {
    const r = deployCheckRow(check(base));
    expect(r).toMatchObject({ simulated: '80.0%', deployed: '75.0%', gap: '−5.0', agreement: '93.8%' });
    expect(r.firstDivergence).toMatch(/^block 1 · depthwise 3×3: 5 steps on 0\.32% of its values — requantization/);
    expect(r.speed).toBe('0.60× FP32 time (6.0 vs 10.0 ms/image)');
    expect(r.error).toBeUndefined();
  });

  it("says 'none' when no layer diverged, and why a config was not deployed", () => {
    const c = check(base);
    expect(deployCheckRow({ ...c, deployed: { ...c.deployed!, firstDivergence: null, top1: 0.8 } })).toMatchObject({
      firstDivergence: 'none',
      gap: '±0.0',
    });
    const r = deployCheckRow({
      ...c,
      deployed: undefined,
      error: { code: 'EXPORT_UNSUPPORTED', message: 'Deploy an 8-bit configuration.', userError: true },
    });
    expect(r).toMatchObject({ deployed: '-', error: 'Deploy an 8-bit configuration.' });
  });
});

describe('DeployCheckState', () => {
  it('keeps checks by hash, the preset table for its result, and shows progress while running', async () => {
    let seen: DeployProgress | undefined;
    const api = {
      checkDeployed: vi.fn(async (configs: ExperimentConfig[], onProgress?: (p: DeployProgress) => void) => {
        onProgress?.({ done: 0.5, total: configs.length, message: 'running it on the integer kernels' });
        seen = s.progress;
        return { ok: true as const, value: configs.map((c) => check(c)) };
      }),
      cancel: vi.fn(async () => undefined),
    };
    const s = new DeployCheckState(() => api as unknown as Remote<QuantApi>);
    const run = s.check(base);
    expect(s.running).toBe('result');
    await run;
    expect(seen?.message).toMatch(/integer kernels/);
    expect(s.running).toBeUndefined();
    expect(s.of('h-openvino')?.deployed?.top1).toBe(0.75);
    await s.checkPresets(base, 'result-hash');
    expect(api.checkDeployed).toHaveBeenCalledTimes(2);
    expect(s.presets?.forHash).toBe('result-hash');
    expect(s.presets?.checks.map((c) => c.config.backend)).toEqual([...DEPLOYABLE_PRESETS]);
    expect(s.of('h-tensorrt')).toBeDefined();
  });

  it('shows a refusal as data and cancels through the worker', async () => {
    let release: () => void = () => undefined;
    const api = {
      checkDeployed: vi.fn(
        () =>
          new Promise((resolve) => {
            release = () =>
              resolve({ ok: false, error: { code: 'CANCELLED', message: 'Cancelled.', userError: true } });
          }),
      ),
      cancel: vi.fn(async () => release()),
    };
    const s = new DeployCheckState(() => api as unknown as Remote<QuantApi>);
    const run = s.check(base);
    s.cancel();
    await run;
    expect(api.cancel).toHaveBeenCalledOnce();
    expect(s.error?.code).toBe('CANCELLED');
    expect(s.running).toBeUndefined();
    expect(s.of('h-openvino')).toBeUndefined();
  });
});
