/**
 * The rune state classes (state/*.svelte.ts) against a fake QuantApi: editing and
 * validating the config, restoring it from a link, loading a model and images, running,
 * cancelling, and the error paths — each worker answer shown as data, never thrown.
 */
import { describe, expect, it, vi } from 'vitest';
import { flushSync } from 'svelte';
import type { Remote } from 'comlink';
import { AppState, formatSeconds } from '../../src/lib/state/app.svelte.ts';
import { runBlocker } from '../../src/lib/state/run-focus.ts';
import { ExperimentState } from '../../src/lib/state/experiment.svelte.ts';
import { serialize } from '../../src/lib/config/url.ts';
import { defaultConfig } from '../../src/lib/config/resolve.ts';
import { configHash } from '../../src/lib/config/hash.ts';
import { configField } from '../../src/lib/config/schema.ts';
import { getModelEntry } from '../../src/lib/models/registry.ts';
import type { DatasetInfo, LoadedModel, QuantApi, RunOutcome } from '../../src/lib/protocol/api.ts';
import type { ErrorInfo, Result } from '../../src/lib/util/errors.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import type { ExperimentResult, Progress } from '../../src/lib/experiment/types.ts';

const ok = <T>(value: T): Result<T> => ({ ok: true, value });
const fail = (code: ErrorInfo['code'], message: string): Result<never> => ({
  ok: false,
  error: { code, message, userError: true },
});
/** let pending promises and effects settle */
const settle = async () => {
  for (let i = 0; i < 5; i++) {
    flushSync();
    await new Promise((r) => setTimeout(r, 0));
  }
};

const MODEL: LoadedModel = {
  id: 'mobilenet-v2',
  name: 'MobileNet-V2',
  sha256: getModelEntry('mobilenet-v2').downloads[0].sha256,
  size: 1,
  verified: 'match',
  fromCache: true,
  inputName: 'input',
  outputName: 'output',
  classes: 1000,
};
const DATA: DatasetInfo = {
  name: 'imagenet-sample',
  images: 1000,
  fingerprint: '1000-0123456789abcdef',
  classes: 1000,
  ignored: 0,
  ignoredNames: [],
};

async function fakeResult(config: ExperimentConfig, top1: number): Promise<ExperimentResult> {
  return { config, configHash: await configHash(config), quant: { top1 } } as unknown as ExperimentResult;
}

/** A scripted QuantApi that records what the state asked of it. */
class FakeApi {
  calls: string[] = [];
  runs: ExperimentConfig[][] = [];
  stored = new Map<string, ExperimentResult>();
  cached: { sha256: string; name: string; size: number; addedAt: number }[] = [];
  modelAnswer: Result<LoadedModel> = ok(MODEL);
  dataAnswer: Result<DatasetInfo> = ok(DATA);
  runAnswer?: (configs: ExperimentConfig[], onProgress?: (p: Progress) => void) => Promise<Result<RunOutcome>>;
  private cancelRun?: () => void;

  api(): Remote<QuantApi> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the fake's object-literal methods have a this of their own
    const self = this;
    const log = (name: string) => self.calls.push(name);
    const impl: Partial<QuantApi> = {
      async configureSite() {
        log('configureSite');
        return ok({ mirrors: [], notices: [] });
      },
      async env() {
        log('env');
        return ok({ webgpu: { available: false }, threads: 2, crossOriginIsolated: true, sharedData: true });
      },
      async listModels() {
        log('listModels');
        return ok(self.cached);
      },
      async listRuns() {
        log('listRuns');
        return ok([...self.stored.values()]);
      },
      async cacheEstimate() {
        log('cacheEstimate');
        return ok({
          usage: 0,
          models: 0,
          modelBytes: 0,
          crops: 0,
          cropBytes: 0,
          runs: self.stored.size,
          source: 'summed' as const,
        });
      },
      async getRun(h) {
        log(`getRun ${h}`);
        return ok(self.stored.get(h) ?? null);
      },
      async loadModel(src) {
        log(`loadModel ${src.kind}`);
        return self.modelAnswer;
      },
      async loadDataset(src) {
        log(`loadDataset ${src.kind}`);
        return self.dataAnswer;
      },
      async run(configs, _engine, onProgress) {
        log('run');
        self.runs.push(configs);
        if (self.runAnswer) return self.runAnswer(configs, onProgress);
        return new Promise((resolve) => {
          self.cancelRun = () => resolve(fail('CANCELLED', 'The run was cancelled.'));
        });
      },
      async cancel() {
        log('cancel');
        self.cancelRun?.();
      },
    };
    return impl as unknown as Remote<QuantApi>;
  }
}

function app(hash: string, fake: FakeApi): AppState {
  const api = fake.api();
  return new AppState(hash, () => api);
}

describe('ExperimentState', () => {
  it('restores a config from a link, with its overrides, hidden controls and notices', async () => {
    const e = new ExperimentState('#v=1&backend=snpe&wBits=4&calib=32&wObserver_hide=1&bogus=1');
    expect(e.config).toEqual({ ...defaultConfig('snpe'), wBits: 4, calib: 32 });
    expect(e.overridden).toEqual(['wBits']);
    expect(e.isHidden('wObserver')).toBe(true);
    expect(e.notices.join(' ')).toMatch(/unknown setting "bogus"/);
    expect(e.hash).toBe('v=1&backend=snpe&wBits=4&calib=32&wObserver_hide=1');
    await settle();
    expect(e.key).toBe(await configHash(e.config));
  });

  it('keeps an invalid edit out of the config and says why until that field is fixed or reverted', async () => {
    const e = new ExperimentState('');
    e.set('wBits', 17);
    expect(e.config.wBits).toBe(8);
    expect(e.invalid).toMatch(/wBits.*from 2 to 16, got 17\./);
    // editing another field must not hide the refused value (the form still shows 17)
    e.setField(configField('seed')!, 3);
    expect(e.config.seed).toBe(3);
    expect(e.fieldErrors.wBits).toMatch(/got 17/);
    expect(e.invalid).toMatch(/got 17/);
    e.setField(configField('wBits')!, 6);
    expect(e.invalid).toBeUndefined();
    expect(e.config.wBits).toBe(6);
    e.set('aBits', 99);
    const rev = e.revision;
    e.revertField('aBits');
    expect(e.invalid).toBeUndefined();
    expect(e.revision).toBe(rev + 1); // the control redraws with the config's value
    e.setField(configField('aBits')!, 4);
    expect(e.invalid).toBeUndefined();
    expect(e.config.aBits).toBe(4);
    e.setField(configField('placement.concat')!, true);
    expect(e.config.placement.concat).toBe(true);
    expect(e.overridden).toEqual(['wBits', 'aBits', 'placement']);
    // the key follows the config
    await settle();
    expect(e.key).toBe(await configHash(e.config));
  });

  it('switching backend takes the new preset and keeps the rest; reset restores preset fields', () => {
    const e = new ExperimentState('');
    e.set('calib', 32);
    e.set('wBits', 4);
    e.setBackend('openvino');
    expect(e.config).toEqual({ ...defaultConfig('openvino'), calib: 32 });
    e.set('aObserver', 'kl');
    e.set('wBits', 6);
    e.resetField('aObserver');
    expect(e.overridden).toEqual(['wBits']);
    e.resetField();
    expect(e.overridden).toEqual([]);
    expect(e.config.calib).toBe(32);
  });
});

describe('AppState against a fake worker', () => {
  it('init restores what the link names: a cached registry model and the shared images', async () => {
    const fake = new FakeApi();
    fake.cached = [{ sha256: MODEL.sha256, name: 'mobilenet-v2.onnx', size: 1, addedAt: 0 }];
    const a = app('#v=1&backend=snpe&calib=32&eval=64', fake);
    await a.init();
    expect(a.model.state).toBe('ready');
    expect(a.data.state).toBe('ready');
    expect(a.data.value).toEqual(DATA);
    expect(fake.calls).toContain('loadModel registry');
    expect(fake.calls).toContain('loadDataset url');
    expect(a.exp.config).toMatchObject({ backend: 'snpe', calib: 32, eval: 64, model: 'mobilenet-v2' });
    expect(a.runnable).toBe(true);
  });

  it('a model and images the student opens while the page starts are not replaced by the restore', async () => {
    const fake = new FakeApi();
    fake.cached = [{ sha256: MODEL.sha256, name: 'mobilenet-v2.onnx', size: 1, addedAt: 0 }];
    const mine: LoadedModel = { ...MODEL, id: 'sha256:mine', sha256: 'mine', name: 'mine.onnx' };
    let release!: () => void;
    // the student's file is still being read when init reaches its restore
    fake.modelAnswer = new Promise<Result<LoadedModel>>((r) => (release = () => r(ok(mine)))) as never;
    const a = app('#v=1&backend=snpe&calib=32&eval=64', fake);
    const starting = a.init();
    const picked = a.loadModel({ kind: 'bytes', bytes: new Uint8Array(8), name: 'mine.onnx' });
    const images = a.loadData({ kind: 'url', baseUrl: 'https://example.org/imgs/' });
    await new Promise((r) => setTimeout(r, 20));
    release();
    await Promise.all([picked, images, starting]);
    expect(fake.calls.filter((c) => c.startsWith('loadModel'))).toEqual(['loadModel bytes']);
    expect(fake.calls.filter((c) => c.startsWith('loadDataset'))).toEqual(['loadDataset url']);
    expect(a.model.value?.name).toBe('mine.onnx');
    expect(a.exp.config.model).toBe('sha256:mine');
  });

  it('never downloads a model the link names unless it is cached', async () => {
    const fake = new FakeApi();
    const a = app('#v=1', fake);
    await a.init();
    expect(fake.calls.some((c) => c.startsWith('loadModel'))).toBe(false);
    expect(a.model.state).toBe('empty');
    expect(a.runnable).toBe(false);
  });

  it("a lesson's link loads the lesson's model and images, as opening the lesson does", async () => {
    const fake = new FakeApi();
    const a = app('#v=1&backend=tensorrt&wBits=6&lesson=bit-width', fake);
    await a.init();
    expect(a.lessonId).toBe('bit-width');
    expect(fake.calls).toContain('loadModel registry');
    expect(a.model.state).toBe('ready');
    expect(a.data.state).toBe('ready');
  });

  it('a quantized model is shown as the imported file and blocks Run with a sentence', async () => {
    const fake = new FakeApi();
    const quantized = {
      format: 'qdq' as const,
      layers: [],
      activations: 2,
      floatLayers: [],
      unsupported: [],
      notes: [],
    };
    fake.modelAnswer = ok({ ...MODEL, id: 'sha256:q', sha256: 'q', name: 'q.onnx', quantized });
    const a = app('', fake);
    expect(await a.loadModel({ kind: 'url', url: 'x' })).toBe(true);
    expect(await a.loadSharedSample()).toBe(true);
    expect(a.imported.file?.name).toBe('q.onnx');
    expect(a.imported.isLoaded).toBe(true);
    expect(a.runnable).toBe(false);
    expect(runBlocker(a)).toMatch(/already quantized: evaluate it as it is, or open its float parent/);
    // its float parent makes Run available again; the file stays
    fake.modelAnswer = ok(MODEL);
    expect(await a.loadModel({ kind: 'url', url: 'y' })).toBe(true);
    expect(a.imported.parent?.sha256).toBe(MODEL.sha256);
    expect(a.runnable).toBe(true);
    // a search from a result holds the worker: Run waits, and says why
    a.search.running = true;
    expect(a.runnable).toBe(false);
    expect(runBlocker(a)).toMatch(/search under the result to finish, or cancel it/);
    a.search.running = false;
    expect(a.runnable).toBe(true);
  });

  it('shows a model or data load failure as data', async () => {
    const fake = new FakeApi();
    fake.modelAnswer = fail('MODEL_NOT_ONNX', 'The file is not an ONNX model.');
    fake.dataAnswer = fail('DATA_EMPTY', 'The folder has no images.');
    const a = app('', fake);
    expect(await a.loadModel({ kind: 'url', url: 'x' })).toBe(false);
    expect(a.model.state).toBe('error');
    expect(a.model.error?.code).toBe('MODEL_NOT_ONNX');
    expect(await a.loadSharedSample()).toBe(false);
    expect(a.data.state).toBe('error');
    expect(a.data.error?.message).toBe('The folder has no images.');
    expect(a.runnable).toBe(false);
  });

  it('runs the current config, reports progress, and shows the fresh result', async () => {
    const fake = new FakeApi();
    const seen: Progress[] = [];
    fake.runAnswer = async (configs, onProgress) => {
      const p: Progress = { stage: 'evaluate', done: 1, total: 2, message: 'half' } as Progress;
      onProgress?.(p);
      seen.push(p);
      return ok({
        results: [await fakeResult(configs[0], 0.7)],
        engine: 'wasm (fake)',
        engineKind: 'wasm',
        warnings: [],
      });
    };
    const a = app('#v=1&backend=vitis&calib=16&eval=32', fake);
    await a.loadModel({ kind: 'url', url: 'm.onnx' });
    await a.loadSharedSample();
    await a.run();
    expect(fake.runs).toHaveLength(1);
    expect(fake.runs[0][0]).toEqual(a.exp.snapshot());
    expect(a.runner.state).toBe('done');
    expect(a.resultSource).toBe('fresh');
    expect(a.result?.configHash).toBe(await configHash(a.exp.config));
    expect(a.runner.outcome?.engine).toBe('wasm (fake)');
    expect(a.runner.progress).toEqual(seen[0]);
    // the finished run is stored: a later visit with the same link finds it
    fake.stored.set(a.result!.configHash, a.result!);
    const b = app(`#${serialize(a.exp.config)}`, fake);
    // the key is the config's hash, computed asynchronously (slower on a loaded machine)
    await vi.waitFor(() => expect(b.exp.key).toBe(a.result!.configHash));
    await b.lookupStored(b.exp.key);
    expect(b.resultSource).toBe('stored');
    expect(b.result?.configHash).toBe(a.result?.configHash);
    // an answer for a config the user has already left is dropped
    const oldKey = b.exp.key;
    b.exp.set('seed', 9);
    await settle();
    b.result = undefined;
    await b.lookupStored(oldKey);
    expect(b.result).toBeUndefined();
    expect(b.resultSource).toBe('stored'); // untouched by the stale answer
  });

  it('Try it with other images loaded loads the sample it names before it runs', async () => {
    const fake = new FakeApi();
    fake.runAnswer = async (configs) =>
      ok({ results: [await fakeResult(configs[0], 0.7)], engine: 'wasm (fake)', engineKind: 'wasm', warnings: [] });
    const a = app('', fake);
    await a.loadModel({ kind: 'url', url: 'm.onnx' });
    fake.dataAnswer = ok({ ...DATA, name: 'holiday-photos', images: 40, fingerprint: '40-fedcba9876543210' });
    await a.loadData({ kind: 'url', baseUrl: 'https://example.org/photos/' });
    expect(a.exp.config.dataset).toBe('holiday-photos');
    fake.dataAnswer = ok(DATA);
    fake.calls = [];
    await a.tryIt();
    expect(fake.calls.filter((c) => c.startsWith('loadDataset'))).toEqual(['loadDataset registry']);
    expect(a.data.value).toEqual(DATA);
    expect(fake.runs.at(-1)![0].dataset).toBe('imagenet-sample');
  });

  it('cancel ends the run as cancelled, leaves no error and the app runnable again', async () => {
    const fake = new FakeApi();
    const a = app('', fake);
    await a.loadModel({ kind: 'url', url: 'm.onnx' });
    await a.loadSharedSample();
    const running = a.run();
    expect(a.runner.state).toBe('running');
    expect(a.runnable).toBe(false);
    await a.run(); // a second click while running does nothing
    expect(fake.runs).toHaveLength(1);
    await a.cancel();
    await running;
    expect(a.runner.state).toBe('cancelled');
    expect(a.runner.error).toBeUndefined();
    expect(a.runnable).toBe(true);
  });

  it('a failed run shows its error and keeps the previous config', async () => {
    const fake = new FakeApi();
    fake.runAnswer = async () => fail('DATA_TOO_FEW_IMAGES', 'The data set has 100 images; lower the counts.');
    const a = app('#v=1&calib=64', fake);
    const before = a.exp.snapshot();
    await a.run();
    expect(a.runner.state).toBe('error');
    expect(a.runner.error).toEqual({
      code: 'DATA_TOO_FEW_IMAGES',
      message: 'The data set has 100 images; lower the counts.',
      userError: true,
    });
    expect(a.result).toBeUndefined();
    expect(a.exp.config).toEqual(before);
  });

  it('opening a stored run makes its config the current one', async () => {
    const fake = new FakeApi();
    const a = app('', fake);
    const r = await fakeResult({ ...defaultConfig('fbgemm'), wBits: 4 }, 0.5);
    await a.openRun(r);
    expect(a.exp.config).toEqual(r.config);
    expect(a.exp.overridden).toEqual(['wBits']);
    expect(a.resultSource).toBe('stored');
    expect(a.exp.hash).toBe('v=1&backend=fbgemm&wBits=4');
  });
});

describe('formatSeconds', () => {
  it('takes seconds', () => {
    expect(formatSeconds(5)).toBe('5.0 s');
    expect(formatSeconds(65)).toBe('1 min 5 s');
  });
});
