/**
 * IndexedDB storage with fake-indexeddb: migration from v1 data, quota errors mapped to
 * STORAGE_QUOTA with nothing written, crop cache hits, cache estimate and clearing.
 */
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import { openDB } from 'idb';
import { QpStorage, DB_VERSION } from '../../src/lib/storage/db.ts';
import { QpError } from '../../src/lib/protocol/errors.ts';
import type { ExperimentResult } from '../../src/lib/experiment/types.ts';

let n = 0;
const freshName = () => `qp-test-${n++}-${Math.random().toString(36).slice(2)}`;

function fakeResult(hash: string, createdAt: string): ExperimentResult {
  const acc = { top1: 0.8, top5: 0.95, top1Ci: [0.7, 0.9] as [number, number], top5Ci: [0.9, 0.99] as [number, number] };
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

/** Make IDBObjectStore.put fail like a full disk for values bigger than `limit` bytes. */
function simulateQuota(limit: number): () => void {
  const proto = (globalThis as unknown as { IDBObjectStore: { prototype: { put: (...a: unknown[]) => unknown } } }).IDBObjectStore.prototype;
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
    expect(e).toMatchObject({ models: 1, modelBytes: 1000, crops: 2, cropBytes: 300, runs: 1, usage: 1300, source: 'summed' });
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
    // the next call reopens; the newer version is kept (no downgrade), so opening ours fails cleanly
    const err = await s.getRun('x').catch((e) => e);
    expect(err).toBeInstanceOf(QpError);
    expect(err.code).toBe('STORAGE_FAILED');
  });
});
