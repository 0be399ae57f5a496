/**
 * AppState and shared links against a fake worker: the model is resolved by sha256 from
 * the cache, a registry download, the dev server or the link's URL, a local file is asked
 * for (and one with another hash refused by the worker's check), images must have the
 * link's fingerprint, the link follows what is in use; Cancel is acknowledged at once and
 * a worker that ignores it is ended.
 */
import { describe, expect, it, vi } from 'vitest';
import type { Remote } from 'comlink';
import { AppState, CANCEL_GRACE_MS } from '../../src/lib/state/app.svelte.ts';
import { parseLink } from '../../src/lib/config/link.ts';
import { runBlocker } from '../../src/lib/state/run-focus.ts';
import { LessonsState } from '../../src/lib/state/lessons.svelte.ts';
import { LESSONS } from '../../src/lessons/index.ts';
import { getModelEntry } from '../../src/lib/models/registry.ts';
import type { DatasetInfo, LoadedModel, ModelSource, QuantApi, DataSource } from '../../src/lib/protocol/api.ts';
import type { Result } from '../../src/lib/util/errors.ts';

const ok = <T>(value: T): Result<T> => ({ ok: true, value });
const DEV_SHA = 'f00130594d83447f5f46429a6c3b2f886036567cb61fe573fd171e7da07eab04';
const FP = '1000-0123456789abcdef';
const model = (sha256: string, id = `sha256:${sha256}`): LoadedModel => ({
  id,
  name: 'm',
  sha256,
  size: 1,
  verified: 'unknown',
  fromCache: false,
  inputName: 'input',
  outputName: 'output',
  classes: 1000,
});
const data = (fingerprint = FP): DatasetInfo => ({
  name: 'imagenet-sample',
  images: 1000,
  fingerprint,
  classes: 1000,
  ignored: 0,
  ignoredNames: [],
});

class Fake {
  models: ModelSource[] = [];
  datas: DataSource[] = [];
  cached: { sha256: string; name: string; size: number }[] = [];
  answerModel = (src: ModelSource): Result<LoadedModel> =>
    ok(
      model(
        src.kind === 'cached'
          ? src.sha256
          : src.kind === 'url'
            ? (src.expectSha256 ?? src.expect?.sha256 ?? DEV_SHA)
            : DEV_SHA,
      ),
    );
  fingerprint = FP;
  cancels = 0;
  api(): Remote<QuantApi> {
    const impl: Partial<QuantApi> = {
      env: async () => ok({ webgpu: { available: false }, threads: 2, crossOriginIsolated: true, sharedData: true }),
      configureSite: async () => ok({ mirrors: [], notices: [] }),
      listModels: async () => ok(this.cached.map((c) => ({ ...c, addedAt: 0 }))),
      listRuns: async () => ok([]),
      cacheEstimate: async () =>
        ok({ usage: 0, models: 0, modelBytes: 0, crops: 0, cropBytes: 0, runs: 0, source: 'summed' as const }),
      getRun: async () => ok(null),
      loadModel: async (src) => (this.models.push(src), this.answerModel(src)),
      loadDataset: async (src) => (this.datas.push(src), ok(data(this.fingerprint))),
      run: () => new Promise(() => undefined), // a worker stuck in a stage: never answers
      cancel: async () => void this.cancels++,
    };
    return impl as unknown as Remote<QuantApi>;
  }
}

function app(hash: string, fake: Fake, stop: () => boolean = () => false): AppState {
  const api = fake.api();
  const a = new AppState(hash, () => api, stop);
  a.env = { webgpu: { available: false }, threads: 2, crossOriginIsolated: true, sharedData: true };
  return a;
}

const devLink = `#v=1&backend=tensorrt&calib=16&eval=32&model=sha256:${DEV_SHA}&msha=${DEV_SHA}&msrc=dev:mobilenetv2-7-fp32.onnx&dfp=${FP}&dsrc=folder:imagenet-sample&engine=wasm`;

describe('opening a link', () => {
  it('loads a dev-server model by name, checked against the sha256, and the dev sample by fingerprint', async () => {
    const fake = new Fake();
    const a = app(devLink, fake);
    a.sharedModels = [{ name: 'mobilenetv2-7-fp32.onnx', size: 1, url: '/shared-data/models/mobilenetv2-7-fp32.onnx' }];
    await a.restoreFromConfig();
    expect(fake.models).toEqual([
      {
        kind: 'url',
        url: '/shared-data/models/mobilenetv2-7-fp32.onnx',
        name: 'mobilenetv2-7-fp32.onnx',
        expectSha256: DEV_SHA,
      },
    ]);
    expect(fake.datas).toEqual([{ kind: 'url', baseUrl: '/shared-data/imagenet-sample/' }]);
    expect(a.model.state).toBe('ready');
    expect(a.data.state).toBe('ready');
    expect(a.enginePref).toBe('wasm');
    expect(a.runnable).toBe(true);
    // the link now says what is in use, and reads back the same
    const back = parseLink(a.link);
    expect(back.extras.model).toEqual({ sha256: DEV_SHA, source: { kind: 'dev', name: 'mobilenetv2-7-fp32.onnx' } });
    expect(back.extras.data).toEqual({ fingerprint: FP, source: { kind: 'dev', name: 'imagenet-sample' } });
  });

  it('prefers the cache by hash, then the registry file with exactly that hash (mirrors, then its URL)', async () => {
    const fake = new Fake();
    fake.cached = [{ sha256: DEV_SHA, name: 'x.onnx', size: 1 }];
    const a = app(devLink, fake);
    await a.init();
    expect(fake.models[0]).toEqual({ kind: 'cached', sha256: DEV_SHA });

    const d = getModelEntry('mobilenet-v2').downloads[0];
    const fake2 = new Fake();
    const b = app(`#v=1&msha=${d.sha256}&msrc=registry:mobilenet-v2`, fake2);
    await b.restoreFromConfig();
    expect(fake2.models[0]).toEqual({ kind: 'registry', id: 'mobilenet-v2', sha256: d.sha256 });
  });

  it('asks the registry for exactly the listed copy, never another hash, and else asks for the local file', async () => {
    const fake = new Fake();
    // no mirror of this site has the copy
    fake.answerModel = () => ({
      ok: false,
      error: { code: 'MODEL_DOWNLOAD_FAILED', message: 'not on any mirror', userError: true },
    });
    const a = app(`#v=1&msha=${DEV_SHA}&msrc=file:mobilenet.onnx`, fake);
    await a.restoreFromConfig();
    expect(fake.models).toEqual([{ kind: 'registry', id: 'mobilenet-v2', sha256: DEV_SHA }]);
    // the file is asked for, and the registry's own copy offered in its place
    expect(a.model.ask).toEqual({ name: 'mobilenet.onnx', sha256: DEV_SHA, registry: 'mobilenet-v2' });
    expect(a.model.state).toBe('error');
    expect(a.runnable).toBe(false);
    // the file the user opens is checked against the link's hash by the worker
    const file = new File([new Uint8Array([8, 1])], 'mobilenet.onnx');
    await a.loadModelFile(file);
    expect(fake.models[1]).toMatchObject({ kind: 'bytes', name: 'mobilenet.onnx', expectSha256: DEV_SHA });
  });

  it('refuses images with another fingerprint, saying both', async () => {
    const fake = new Fake();
    fake.fingerprint = '999-ffffffffffffffff';
    const a = app(devLink, fake);
    await a.restoreFromConfig();
    expect(a.data.state).toBe('error');
    expect(a.data.error?.message).toMatch(/fingerprint 999-ffffffffffffffff, the link needs 1000-0123456789abcdef/);
    expect(a.data.value).toBeUndefined();
    a.forgetWanted('data');
    expect(await a.loadSharedSample()).toBe(true);
  });

  it('a local folder is asked for by name and fingerprint', async () => {
    const fake = new Fake();
    const a = app(`#v=1&dfp=${FP}&dsrc=folder:my-photos`, fake);
    await a.restoreFromConfig();
    expect(fake.datas).toEqual([]);
    expect(a.data.ask).toEqual({ name: 'my-photos', fingerprint: FP });
  });
});

describe('cancel', () => {
  it('is acknowledged at once; a worker that does not stop is ended and the model and images come back', async () => {
    vi.useFakeTimers();
    try {
      const fake = new Fake();
      let stopped = 0;
      // the stopped worker answers CANCELLED (clients/quant.ts stopWorker): emulated here
      let answer!: (r: Result<never>) => void;
      const api = fake.api();
      (api as unknown as { run: unknown }).run = () => new Promise((r) => (answer = r));
      const b = new AppState(
        devLink,
        () => api,
        () => {
          stopped++;
          answer({ ok: false, error: { code: 'CANCELLED', message: 'The run was cancelled.', userError: true } });
          return true;
        },
      );
      b.env = { webgpu: { available: false }, threads: 2, crossOriginIsolated: true, sharedData: true };
      b.sharedModels = [
        { name: 'mobilenetv2-7-fp32.onnx', size: 1, url: '/shared-data/models/mobilenetv2-7-fp32.onnx' },
      ];
      await b.restoreFromConfig();
      const running = b.run();
      void b.cancel();
      expect(b.runner.cancelling).toBe(true);
      expect(stopped).toBe(0);
      await vi.advanceTimersByTimeAsync(CANCEL_GRACE_MS + 10);
      await running;
      expect(stopped).toBe(1);
      expect(b.runner.state).toBe('cancelled');
      expect(b.runner.cancelling).toBe(false);
      // reloaded by hash and fingerprint
      expect(b.model.state).toBe('ready');
      expect(b.data.state).toBe('ready');
      expect(b.model.value?.sha256).toBe(DEV_SHA);
      expect(b.runnable).toBe(true);
      expect(CANCEL_GRACE_MS).toBeLessThan(1000);
    } finally {
      vi.useRealTimers();
    }
  });

  it('while the model comes back after a stopped worker, Run says it is reloading, and is ready when it is back', async () => {
    vi.useFakeTimers();
    try {
      const fake = new Fake();
      let answer!: (r: Result<never>) => void;
      let release!: () => void;
      const api = fake.api();
      (api as unknown as { run: unknown }).run = () => new Promise((r) => (answer = r));
      const b = new AppState(
        devLink,
        () => api,
        () => {
          answer({ ok: false, error: { code: 'CANCELLED', message: 'The run was cancelled.', userError: true } });
          return true;
        },
      );
      b.env = { webgpu: { available: false }, threads: 2, crossOriginIsolated: true, sharedData: true };
      b.sharedModels = [
        { name: 'mobilenetv2-7-fp32.onnx', size: 1, url: '/shared-data/models/mobilenetv2-7-fp32.onnx' },
      ];
      await b.restoreFromConfig();
      const load = api.loadModel;
      (api as unknown as { loadModel: unknown }).loadModel = (...args: Parameters<typeof load>) =>
        new Promise((r) => (release = () => r(load(...args))));
      const running = b.run();
      void b.cancel();
      await vi.advanceTimersByTimeAsync(CANCEL_GRACE_MS + 10);
      expect(b.runner.state).toBe('cancelled');
      expect(b.reloading).toBe(true);
      expect(b.runnable).toBe(false);
      expect(runBlocker(b)).toMatch(/Reloading the model/);
      release();
      await running;
      expect(b.reloading).toBe(false);
      expect(b.runnable).toBe(true);
      expect(runBlocker(b)).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('lessons in the link', () => {
  const observers = LESSONS.find((l) => l.id === 'observers')!;

  it('opening a lesson puts it in the link; a link with it opens it; closing shows every control again', () => {
    const fake = new Fake();
    const a = app('', fake);
    const lessons = new LessonsState(a);
    lessons.open(observers);
    expect(lessons.current?.id).toBe('observers');
    expect(a.link).toMatch(/&lesson=observers$/);
    expect(a.exp.isHidden('placement')).toBe(true);
    expect(a.exp.isHidden('history')).toBe(false);

    const b = app(`#${a.link}`, new Fake());
    expect(new LessonsState(b).current?.id).toBe('observers');
    expect(b.exp.config.aBits).toBe(6);

    lessons.close();
    expect(lessons.current).toBeUndefined();
    expect(a.exp.hidden.size).toBe(0);
    expect(a.link).not.toMatch(/lesson=|_hide=/);
    // the settings stay
    expect(a.exp.config.aBits).toBe(6);
  });

  it('a link naming a lesson this version lacks loads the settings and says so', () => {
    const a = app('#v=1&aBits=6&lesson=no-such-lesson', new Fake());
    expect(a.lessonId).toBeUndefined();
    expect(a.exp.config.aBits).toBe(6);
    expect(a.exp.notices.join(' ')).toMatch(/lesson "no-such-lesson", which this version does not have/);
  });

  it('the section below the controls travels in the link', () => {
    const a = app('#v=1&view=graph', new Fake());
    expect(a.view).toBe('graph');
    a.view = 'history';
    expect(a.link).toMatch(/view=history/);
    a.view = 'learn';
    expect(a.link).not.toMatch(/view=/);
  });
});
