/**
 * ImportedState (state/imported.svelte.ts) against a fake worker and host: a quantized model
 * loaded becomes the file shown and is kept when its parent is loaded; "Evaluate as it is"
 * and the comparison report progress, can be cancelled, and show the worker's error as data;
 * a quantized file opened as the parent is refused with a sentence; re-simulating sets the
 * scheme's fields on the current config and runs it.
 */
import { describe, expect, it } from 'vitest';
import { ImportedState, type ImportedHost } from '../../src/lib/state/imported.svelte.ts';
import { defaultConfig } from '../../src/lib/config/resolve.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import type { LoadedModel } from '../../src/lib/protocol/api.ts';
import type { AsIsResult, ImportedComparison, QuantizedInfo } from '../../src/lib/protocol/imported.ts';
import type { Progress } from '../../src/lib/protocol/results.ts';
import type { ErrorInfo, Result } from '../../src/lib/util/errors.ts';

const ok = <T>(value: T): Result<T> => ({ ok: true, value });
const acc = (top1: number) => ({
  top1,
  top5: top1,
  top1Ci: [0, 1] as [number, number],
  top5Ci: [0, 1] as [number, number],
});

const QUANTIZED: QuantizedInfo = {
  format: 'qdq',
  layers: [
    {
      node: 'Conv_c',
      opType: 'Conv',
      label: 'conv',
      weight: null,
      input: null,
      output: null,
      bias: 'none',
    },
  ],
  activations: 3,
  floatLayers: [],
  unsupported: [],
  notes: [],
};
const model = (sha256: string, quantized?: QuantizedInfo): LoadedModel => ({
  id: `sha256:${sha256}`,
  name: `${sha256}.onnx`,
  sha256,
  size: 1,
  verified: 'unknown',
  fromCache: false,
  inputName: 'input',
  outputName: 'logits',
  classes: 1000,
  ...(quantized ? { quantized } : {}),
});
const FILE = model('q1', QUANTIZED);
const PARENT = model('p1');
const AS_IS: AsIsResult = { sha256: 'q1', accuracy: acc(0.7), images: { calib: 8, eval: 32, skipped: 0 }, seconds: 1 };
const COMPARISON = {
  sha256: 'q1',
  parent: { sha256: 'p1', id: 'sha256:p1' },
  matched: 1,
  unmatchedImported: [],
  unmatchedParent: [],
  unmatchedActivations: [],
  asIs: AS_IS,
  fp32: acc(0.75),
  agreement: 0.9,
  resimulated: acc(0.69),
  resimulatedAgreement: 0.95,
  fields: { wObserver: 'imported', aObserver: 'imported', importedScheme: 'sha256:q1', placement: { add: false } },
  comparison: { layers: [] },
} as unknown as ImportedComparison;

function setup() {
  let config: ExperimentConfig = { ...defaultConfig(), placement: { ...defaultConfig().placement, add: true } };
  const host = {
    model: { value: undefined as LoadedModel | undefined },
    enginePref: 'wasm' as const,
    analysisImages: 16,
    runs: 0,
    next: undefined as LoadedModel | undefined,
    exp: {
      get config() {
        return config;
      },
      set config(c: ExperimentConfig) {
        config = c;
      },
      snapshot: () => structuredClone(config),
    },
    loadModelFile: async () => {
      host.model.value = host.next;
      state.noteModel(host.next);
      return !!host.next;
    },
    run: async () => void host.runs++,
  };
  const calls: string[] = [];
  let release: (() => void) | undefined;
  const api = {
    answer: ok(AS_IS) as Result<AsIsResult>,
    evaluateImported: async (_c: ExperimentConfig, _e: string, p: (p: Progress) => void) => {
      calls.push('evaluate');
      p({ stage: 'evaluate', done: 1, total: 2, message: 'Imported model as it is 1/2' });
      await new Promise<void>((r) => (release = r));
      return api.answer;
    },
    compareWithParent: async (_c: ExperimentConfig, _e: string, _p: unknown, o: { images?: number }) => {
      calls.push(`compare ${o.images}`);
      return ok(COMPARISON);
    },
    cancel: async () => void calls.push('cancel'),
  };
  const state = new ImportedState(host as unknown as ImportedHost, () => api as never);
  return { state, host, api, calls, release: () => release?.(), config: () => config };
}

describe('ImportedState', () => {
  it('keeps the quantized file when its parent is loaded, and drops what was measured of another file', () => {
    const { state, host } = setup();
    host.model.value = PARENT;
    state.noteModel(PARENT);
    expect(state.file).toBeUndefined();
    host.model.value = FILE;
    state.noteModel(FILE);
    expect(state.file?.sha256).toBe('q1');
    expect(state.isLoaded).toBe(true);
    expect(state.parent).toBeUndefined();
    expect(state.layerRows.map((r) => r.bits)).toEqual(['float']);
    expect(state.summary).toMatch(/^QDQ: 0 of 1 layers/);
    host.model.value = PARENT;
    state.noteModel(PARENT);
    expect(state.file?.sha256).toBe('q1');
    expect(state.parent?.sha256).toBe('p1');
    expect(state.isLoaded).toBe(false);
  });

  it('evaluates as it is with progress and cancel, and shows the error as data', async () => {
    const { state, host, api, calls, release } = setup();
    host.model.value = FILE;
    state.noteModel(FILE);
    const done = state.evaluate();
    await Promise.resolve();
    expect(state.busy).toBe('evaluating');
    expect(state.progress?.message).toBe('Imported model as it is 1/2');
    await state.cancel();
    expect(state.cancelling).toBe(true);
    expect(calls).toEqual(['evaluate', 'cancel']);
    release();
    await done;
    expect(state.busy).toBe('idle');
    expect(state.cancelling).toBe(false);
    expect(state.asIs?.accuracy.top1).toBe(0.7);
    const err: ErrorInfo = { code: 'CANCELLED', message: 'The run was cancelled.', userError: true };
    api.answer = { ok: false, error: err };
    const again = state.evaluate();
    await Promise.resolve();
    release();
    await again;
    expect(state.error).toEqual(err);
    expect(state.asIs?.accuracy.top1).toBe(0.7); // the earlier figure stays
  });

  it('opens the parent, compares, then re-simulates with the scheme’s fields on the current config', async () => {
    const { state, host, calls, config } = setup();
    host.model.value = FILE;
    state.noteModel(FILE);
    expect(state.resimulationConfig()).toBeUndefined();
    host.next = PARENT;
    await state.openParent(new File([], 'p1.onnx'));
    expect(calls).toEqual(['compare 16']);
    expect(state.comparison?.agreement).toBe(0.9);
    expect(state.asIs).toBe(AS_IS);
    expect(state.bits.size).toBe(0);
    await state.resimulate();
    expect(host.runs).toBe(1);
    const c = config();
    expect([c.wObserver, c.aObserver, c.importedScheme]).toEqual(['imported', 'imported', 'sha256:q1']);
    // the scheme's placement rules over the current ones, the others kept
    expect(c.placement.add).toBe(false);
    expect(c.placement.conv).toBe(defaultConfig().placement.conv);
  });

  it('refuses a quantized file opened as the parent, with a sentence', async () => {
    const { state, host, calls } = setup();
    host.model.value = FILE;
    state.noteModel(FILE);
    host.next = model('q2', QUANTIZED);
    await state.openParent(new File([], 'q2.onnx'));
    expect(calls).toEqual([]);
    expect(state.file?.sha256).toBe('q2');
    expect(state.error?.message).toMatch(/"q2.onnx" is quantized too.*open that one/);
  });
});
