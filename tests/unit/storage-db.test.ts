/**
 * IndexedDB storage with fake-indexeddb: migration from v1 data, quota errors mapped to
 * STORAGE_QUOTA with nothing written, crop cache hits, cache estimate and clearing.
 */
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import { openDB } from 'idb';
import { QpStorage, DB_VERSION } from '../../src/lib/storage/db.ts';
import { QpError } from '../../src/lib/util/errors.ts';
import type { ExperimentResult } from '../../src/lib/experiment/types.ts';
import type { LayerAnalysis } from '../../src/lib/analysis/types.ts';

let n = 0;
const freshName = () => `qp-test-${n++}-${Math.random().toString(36).slice(2)}`;

function fakeResult(hash: string, createdAt: string): ExperimentResult {
  const acc = {
    top1: 0.8,
    top5: 0.95,
    top1Ci: [0.7, 0.9] as [number, number],
    top5Ci: [0.9, 0.99] as [number, number],
  };
  return {
    config: { v: 1 } as ExperimentResult['config'],
    configHash: hash,
    fp32: acc,
    quant: acc,
    agreement: 0.9,
    images: { calib: 32, eval: 64, skipped: 0 },
    seconds: 1,
    engine: 'test',
    quantPoints: { activations: 1, weights: 1 },
    unquantizedOps: [],
    createdAt,
  };
}

/** One per-layer row with `c` channels; values that float32 cannot hold exactly. */
function fakeLayer(name: string, c: number): LayerAnalysis {
  const ramp = (k: number) => Array.from({ length: c }, (_, i) => k + i / 3);
  const m = { sqnrDb: 20.1, cosine: 0.99, mse: 0.01 };
  return {
    name,
    opType: 'Conv',
    depthwise: false,
    index: 0,
    output: `${name}_out`,
    weight: `${name}_w`,
    weightBits: 4,
    weightSqnrDb: 18.2,
    standalone: m,
    accumulated: m,
    activationInput: null,
    channels: c,
    vanishedChannels: 1,
    weightRanges: { min: ramp(-1), max: ramp(1) },
    drift: { meanAbsShift: 0.1, stdRatio: 0.9, channels: c },
    channelDrift: { fpMean: ramp(0), fpStd: ramp(1), qMean: ramp(0.1), qStd: ramp(1.1) },
  };
}

/** Make IDBObjectStore.put fail like a full disk for values bigger than `limit` bytes. */
function simulateQuota(limit: number): () => void {
  const proto = (globalThis as unknown as { IDBObjectStore: { prototype: { put: (...a: unknown[]) => unknown } } })
    .IDBObjectStore.prototype;
  const orig = proto.put;
  proto.put = function (this: unknown, value: unknown, ...rest: unknown[]) {
    const v = value as { bytes?: Uint8Array; byteLength?: number };
    const size = v instanceof Uint8Array ? v.byteLength : (v?.bytes?.byteLength ?? 0);
    if (size > limit) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    return orig.call(this, value, ...rest);
  };
  return () => {
    proto.put = orig;
  };
}

const stores: QpStorage[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});
function storage(name = freshName()) {
  const s = new QpStorage(name, {}, { estimate: undefined });
  stores.push(s);
  return s;
}

describe('storage db', () => {
  it('migrates v1 data (models without size, runs without index) to the current version', async () => {
    const name = freshName();
    const v1 = await openDB(name, 1, {
      upgrade(db) {
        db.createObjectStore('models', { keyPath: 'sha256' });
        db.createObjectStore('runs', { keyPath: 'configHash' });
      },
    });
    await v1.put('models', { sha256: 'aa', bytes: new Uint8Array([8, 1, 2, 3]), name: 'old.onnx', addedAt: 5 });
    await v1.put('runs', fakeResult('h1', '2024-01-02T00:00:00Z'));
    await v1.put('runs', fakeResult('h0', '2024-01-01T00:00:00Z'));
    v1.close();

    const s = storage(name);
    const m = await s.getModel('aa');
    expect(m?.size).toBe(4);
    expect(m?.name).toBe('old.onnx');
    expect((await s.listModels()).map((x) => x.sha256)).toEqual(['aa']);
    expect((await s.listRuns()).map((r) => r.configHash)).toEqual(['h0', 'h1']); // by createdAt
    expect(await s.getCrop('x/y')).toBeUndefined();
    await s.setMeta('k', 1);
    expect(await s.getMeta('k')).toBe(1);
    expect((await s.db()).version).toBe(DB_VERSION);
  });

  it('maps a quota error to STORAGE_QUOTA and writes nothing', async () => {
    const s = storage();
    await s.putModel({ sha256: 'small', bytes: new Uint8Array(10), name: 'small' });
    const restore = simulateQuota(1000);
    try {
      const err = await s.putModel({ sha256: 'big', bytes: new Uint8Array(5000), name: 'big.onnx' }).catch((e) => e);
      expect(err).toBeInstanceOf(QpError);
      expect(err.code).toBe('STORAGE_QUOTA');
      expect(err.userError).toBe(true);
      expect(err.message).toMatch(/quota is full\. Nothing was saved\./);
      expect(await s.getModel('big')).toBeUndefined();
      // a crop write over quota: the crop store stops caching but does not fail the run
      const cs = s.cropStore();
      await cs.put('spec/n1', new Uint8Array(5000));
      expect(cs.quotaHit).toBe(true);
      expect(await s.getCrop('spec/n1')).toBeUndefined();
    } finally {
      restore();
    }
    expect((await s.listModels()).map((m) => m.sha256)).toEqual(['small']);
  });

  it('serves crop cache hits and counts them', async () => {
    const s = storage();
    const cs = s.cropStore();
    const crop = new Uint8Array(224 * 224 * 3).map((_, i) => i % 251);
    expect(await cs.get('torchvision-256-224/n01440764')).toBeUndefined();
    await cs.put('torchvision-256-224/n01440764', crop);
    const back = await cs.get('torchvision-256-224/n01440764');
    expect(back).toBeInstanceOf(Uint8Array);
    expect(back!.byteLength).toBe(150_528);
    expect(back).toEqual(crop);
    expect(cs.hits).toBe(1);
    expect(cs.misses).toBe(1);
    // a second store (another realm, e.g. after reload) hits the same entry
    const s2 = storage(s.name);
    expect(await s2.cropStore().get('torchvision-256-224/n01440764')).toEqual(crop);
  });

  it('estimates the cache size and clears models and crops but keeps runs', async () => {
    const s = storage();
    await s.putModel({ sha256: 'm', bytes: new Uint8Array(1000), name: 'm' });
    await s.putCrop('a/1', new Uint8Array(150));
    await s.putCrop('a/2', new Uint8Array(150));
    await s.putRun(fakeResult('r', '2024-01-01T00:00:00Z'));
    const e = await s.estimate();
    expect(e).toMatchObject({
      models: 1,
      modelBytes: 1000,
      crops: 2,
      cropBytes: 300,
      runs: 1,
      usage: 1300,
      source: 'summed',
    });
    await s.clear();
    const e2 = await s.estimate();
    expect(e2).toMatchObject({ models: 0, crops: 0, runs: 1, usage: 0 });
  });

  it('reopens after the connection is closed for another tab (blocking)', async () => {
    const name = freshName();
    const closed: string[] = [];
    const s = new QpStorage(name, { onClosed: (r) => closed.push(r) }, {});
    stores.push(s);
    await s.putRun(fakeResult('x', '2024-01-01T00:00:00Z'));
    // another "tab" opens a newer version: ours must step aside
    const other = await openDB(name, DB_VERSION + 1);
    other.close();
    expect(closed).toEqual(['blocking']);
    // the next call reopens; the newer version is kept (no downgrade): this tab is told to reload
    const err = await s.getRun('x').catch((e) => e);
    expect(err).toBeInstanceOf(QpError);
    expect(err.code).toBe('STORAGE_OUTDATED');
    expect(err.message).toMatch(
      /newer version of the playground was opened in another tab.*Reload this tab; your stored runs are kept\./,
    );
  });

  it('migrates v2 runs with inline per-layer rows to runLayers, packed as Float32Array', async () => {
    const name = freshName();
    const v2 = await openDB(name, 2, {
      upgrade(db) {
        db.createObjectStore('models', { keyPath: 'sha256' }).createIndex('addedAt', 'addedAt');
        db.createObjectStore('runs', { keyPath: 'configHash' }).createIndex('createdAt', 'createdAt');
        db.createObjectStore('crops');
        db.createObjectStore('meta');
      },
    });
    await v2.put('runs', {
      ...fakeResult('a', '2024-01-01T00:00:00Z'),
      layers: [fakeLayer('Conv_0', 5), fakeLayer('Conv_2', 3)],
    });
    await v2.put('runs', fakeResult('b', '2024-01-02T00:00:00Z'));
    v2.close();

    const s = storage(name);
    const listed = await s.listRuns();
    expect(listed.map((r) => r.configHash)).toEqual(['a', 'b']);
    expect(listed.every((r) => r.layers === undefined)).toBe(true); // the history does not carry them
    const a = await s.getRun('a');
    expect(a?.layers?.map((l) => l.name)).toEqual(['Conv_0', 'Conv_2']);
    const back = a!.layers![0].channelDrift.fpStd;
    expect(Array.isArray(back)).toBe(true);
    expect(back).toEqual(Array.from(Float32Array.from(fakeLayer('x', 5).channelDrift.fpStd)));
    expect(back[1]).not.toBe(1 + 1 / 3); // float32-rounded, not the double
    expect(Math.abs(back[1] - (1 + 1 / 3))).toBeLessThan(1e-6);
    expect((await s.getRun('b'))?.layers).toBeUndefined();
    const raw = await (await s.db()).get('runLayers', 'a');
    expect(raw?.layers[0].weightRanges.min).toBeInstanceOf(Float32Array);
    expect(raw?.layers[0].channelDrift.qMean).toBeInstanceOf(Float32Array);
    expect((await (await s.db()).get('runs', 'a'))?.layers).toBeUndefined();
  });

  it('keeps per-layer rows with their run: replaced, deleted and cleared together', async () => {
    const s = storage();
    const analysed: ExperimentResult = { ...fakeResult('h', '2024-01-01T00:00:00Z'), layers: [fakeLayer('Conv_0', 4)] };
    await s.putRun(analysed);
    const got = await s.getRun('h');
    expect(got?.layers?.[0].weightRanges.max).toEqual([1, 1 + 1 / 3, 1 + 2 / 3, 2].map((v) => Math.fround(v)));
    expect(got?.layers?.[0].drift).toEqual(analysed.layers![0].drift);
    // a run of the same settings without analysis replaces the rows too
    await s.putRun(fakeResult('h', '2024-01-02T00:00:00Z'));
    expect((await s.getRun('h'))?.layers).toBeUndefined();
    expect(await (await s.db()).count('runLayers')).toBe(0);
    await s.putRun(analysed);
    await s.deleteRun('h');
    expect(await s.getRun('h')).toBeUndefined();
    expect(await (await s.db()).count('runLayers')).toBe(0);
    await s.putRun(analysed);
    await s.clear(['models', 'crops']);
    expect((await s.getRun('h'))?.layers).toHaveLength(1);
    await s.clear(['runs']);
    expect(await (await s.db()).count('runLayers')).toBe(0);
  });

  it('a second tab on a newer version: neither hangs, the older one is told to reload, runs of both survive', async () => {
    const name = freshName();
    const blockedNew: number[] = [];
    const older = new QpStorage(name, {}, {});
    const newer = new QpStorage(
      name,
      { onBlocked: () => blockedNew.push(1) },
      { version: DB_VERSION + 1, blockedTimeoutMs: 200 },
    );
    stores.push(older, newer);
    await older.putRun(fakeResult('old-tab', '2024-01-01T00:00:00Z'));
    // the newer tab's open is not blocked: the older connection closes synchronously
    await newer.putRun(fakeResult('new-tab', '2024-01-02T00:00:00Z'));
    expect(blockedNew).toEqual([]);
    expect((await newer.listRuns()).map((r) => r.configHash)).toEqual(['old-tab', 'new-tab']);
    const err = await older.listRuns().catch((e) => e);
    expect(err).toMatchObject({ code: 'STORAGE_OUTDATED' });
  });

  it('an older tab that never lets go: the newer tab fails fast with STORAGE_BLOCKED, then works once it is free', async () => {
    const name = freshName();
    const seed = new QpStorage(name, {}, {});
    await seed.putRun(fakeResult('kept', '2024-01-01T00:00:00Z'));
    await seed.close();
    // an old tab's connection without a versionchange handler (code from before it existed)
    const stubborn = await openDB(name, DB_VERSION);
    const blocked: number[] = [];
    const newer = new QpStorage(
      name,
      { onBlocked: () => blocked.push(1) },
      { version: DB_VERSION + 1, blockedTimeoutMs: 100 },
    );
    stores.push(newer);
    const t0 = Date.now();
    const err = await newer.listRuns().catch((e) => e);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(err).toBeInstanceOf(QpError);
    expect(err.code).toBe('STORAGE_BLOCKED');
    expect(err.message).toMatch(/Reload or close the other tab; nothing is lost/);
    expect(blocked).toEqual([1]);
    stubborn.close();
    // the open completes once the other tab lets go; nothing stored was lost
    await expect
      .poll(async () => (await newer.listRuns().catch(() => [])).map((r) => r.configHash), { timeout: 2000 })
      .toEqual(['kept']);
  });

  it('storage deleted while open (another tab, site settings): the next call re-creates it and says what was lost', async () => {
    const name = freshName();
    const closed: string[] = [];
    const s = new QpStorage(name, { onClosed: (r) => closed.push(r) }, {});
    stores.push(s);
    await s.putRun(fakeResult('gone', '2024-01-01T00:00:00Z'));
    await s.putModel({ sha256: 'm', bytes: new Uint8Array(10), name: 'm.onnx' });
    expect(s.takeLossNotice()).toBeUndefined();
    await new Promise<void>((resolve, reject) => {
      const req = indexedDB.deleteDatabase(name);
      req.onsuccess = () => resolve();
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new Error('deletion blocked: the open connection did not step aside'));
    });
    expect(closed).toEqual(['deleted']);
    // the next action works on a re-created, empty database and says so, once
    expect(await s.listRuns()).toEqual([]);
    expect(await s.getModel('m')).toBeUndefined();
    await s.putRun(fakeResult('new', '2024-01-02T00:00:00Z'));
    expect(s.takeLossNotice()).toMatch(
      /deleted while it was open.*earlier runs are gone\. Storage was re-created empty; this run was saved\./,
    );
    expect(s.takeLossNotice()).toBeUndefined();
    expect((await s.listRuns()).map((r) => r.configHash)).toEqual(['new']);
  });
});

describe('downloaded files (v4)', () => {
  it('a v3 database gains the files store and keeps what it had', async () => {
    const name = freshName();
    const v3 = await openDB(name, 3, {
      upgrade(db) {
        db.createObjectStore('models', { keyPath: 'sha256' }).createIndex('addedAt', 'addedAt');
        db.createObjectStore('runs', { keyPath: 'configHash' }).createIndex('createdAt', 'createdAt');
        db.createObjectStore('crops');
        db.createObjectStore('meta');
        db.createObjectStore('runLayers');
      },
    });
    await v3.put('crops', new Uint8Array([1, 2]), 'spec/a');
    v3.close();
    const s = storage(name);
    expect(await s.getCrop('spec/a')).toEqual(new Uint8Array([1, 2]));
    expect(await s.getFile('f'.repeat(64))).toBeUndefined();
    expect((await s.db()).objectStoreNames.contains('files')).toBe(true);
  });

  it('keeps images in files and models in models by sha256; clear() empties both', async () => {
    const s = storage();
    const images = s.byteStore('image');
    const models = s.byteStore('model');
    await images.put('a'.repeat(64), new Uint8Array([1, 2, 3]), { name: 'n01440764_tench.JPEG', url: 'https://x/a' });
    await models.put('b'.repeat(64), new Uint8Array([8, 1]), { name: 'mobilenetv2-12.onnx', url: 'https://hf/m' });
    expect(await images.get('a'.repeat(64))).toEqual(new Uint8Array([1, 2, 3]));
    expect(await models.get('b'.repeat(64))).toEqual(new Uint8Array([8, 1]));
    expect(await s.getModel('b'.repeat(64))).toMatchObject({
      name: 'mobilenetv2-12.onnx',
      url: 'https://hf/m',
      size: 2,
    });
    // a second realm (a reload) reads them
    expect(await storage(s.name).byteStore('image').get('a'.repeat(64))).toEqual(new Uint8Array([1, 2, 3]));
    await s.clear();
    expect(await images.get('a'.repeat(64))).toBeUndefined();
    expect(await models.get('b'.repeat(64))).toBeUndefined();
  });

  it('a full quota stops storing downloads without failing the run', async () => {
    const s = storage();
    const images = s.byteStore('image');
    const restore = simulateQuota(100);
    try {
      await images.put('c'.repeat(64), new Uint8Array(500), { name: 'big.JPEG', url: 'https://x/big' });
      expect(images.quotaHit).toBe(true);
      expect(await images.get('c'.repeat(64))).toBeUndefined();
    } finally {
      restore();
    }
  });
});
