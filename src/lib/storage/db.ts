/**
 * The one typed IndexedDB module of the app (idb). Stores model bytes (by sha256),
 * downloaded registry files (image bytes by sha256, verified before they are stored),
 * preprocessed crops (uint8 HWC, by `${specKey}/${imageId}`), run results (by config
 * hash; an analysed run's per-layer rows apart, in `runLayers`) and small metadata. Only
 * the worker imports it; the UI reads runs, the cache size and clears through QuantApi.
 *
 * Rules kept here: migrations are `if (oldVersion < N)` steps; `blocked`, `blocking`
 * and `terminated` are handled (the connection is reopened lazily); nothing but IDB
 * requests is awaited inside a transaction (idb README, "Transaction lifetime");
 * every write is one transaction, so a failure (QuotaExceededError above all) leaves
 * nothing partial behind, and is reported as QpError STORAGE_QUOTA / STORAGE_FAILED.
 * Must not: fetch, hash, decode or touch the DOM.
 */
import { openDB, type DBSchema, type IDBPDatabase, type IDBPTransaction, type StoreNames } from 'idb';
import { QpError } from '../util/errors.ts';
import type { CropStore } from '../data/types.ts';
import type { ByteStore } from '../data/downloads.ts';
import type { ExperimentResult } from '../protocol/results.ts';
import type { ChannelDrift, LayerAnalysis } from '../protocol/analysis.ts';
import type { CacheEstimate } from '../protocol/api.ts';

export type { CacheEstimate };

export const DB_NAME = 'quant-playground';
/**
 * Schema history:
 * - v1: `models` {sha256, bytes, name, url, addedAt}, `runs` {configHash → result}.
 * - v2: `models` gain `size` (backfilled) and an `addedAt` index; new `crops`
 *   (key → Uint8Array) and `meta` stores; `runs` get a `createdAt` index.
 * - v3: an analysed run's `layers` (per-layer rows with per-channel arrays, large next to
 *   the rest of a run) move to `runLayers` (configHash → StoredLayers), so listing the history
 *   does not read them; their per-channel arrays are stored as Float32Array (half the size
 *   of doubles; they are statistics of float32 tensors). Runs stored inline are moved.
 * - v4: `files` (sha256 → Uint8Array): registry images downloaded for a run, so a
 *   second visit (or another model, which needs other crops) downloads nothing.
 */
export const DB_VERSION = 4;

export interface StoredModel {
  sha256: string;
  bytes: Uint8Array;
  /** bytes.byteLength */
  size: number;
  /** display name: registry label or file name */
  name: string;
  /** where it came from, when downloaded */
  url?: string;
  /** ms since epoch */
  addedAt: number;
}

export type StoredModelInfo = Omit<StoredModel, 'bytes'>;

/** A LayerAnalysis with its per-channel arrays packed as Float32Array (storage only). */
export type PackedLayer = Omit<LayerAnalysis, 'weightRanges' | 'channelDrift'> & {
  weightRanges: { min: Float32Array; max: Float32Array };
  channelDrift: { [K in keyof ChannelDrift]: Float32Array };
};

export interface StoredLayers {
  configHash: string;
  layers: PackedLayer[];
}

export interface QpSchema extends DBSchema {
  models: { key: string; value: StoredModel; indexes: { addedAt: number } };
  crops: { key: string; value: Uint8Array };
  /** results without `layers` (those are in runLayers) */
  runs: { key: string; value: ExperimentResult; indexes: { createdAt: string } };
  runLayers: { key: string; value: StoredLayers };
  meta: { key: string; value: unknown };
  files: { key: string; value: Uint8Array };
}

type StoreName = 'models' | 'crops' | 'runs' | 'runLayers' | 'meta' | 'files';

const f32 = (a: ArrayLike<number>) => Float32Array.from(a);
const plain = (a: ArrayLike<number>) => Array.from(a);

/** Per-layer rows → storage form (per-channel arrays as Float32Array). */
export function packLayers(layers: LayerAnalysis[]): PackedLayer[] {
  return layers.map((l) => {
    const d = l.channelDrift;
    const drift = {
      fpMean: f32(d.fpMean),
      fpStd: f32(d.fpStd),
      qMean: f32(d.qMean),
      qStd: f32(d.qStd),
    } as PackedLayer['channelDrift'];
    if (d.runningMean) drift.runningMean = f32(d.runningMean);
    if (d.runningStd) drift.runningStd = f32(d.runningStd);
    return { ...l, weightRanges: { min: f32(l.weightRanges.min), max: f32(l.weightRanges.max) }, channelDrift: drift };
  });
}

/** Storage form → per-layer rows with plain number arrays (also accepts plain arrays). */
export function unpackLayers(layers: PackedLayer[] | LayerAnalysis[]): LayerAnalysis[] {
  return layers.map((l) => {
    const d = l.channelDrift;
    const drift: ChannelDrift = {
      fpMean: plain(d.fpMean),
      fpStd: plain(d.fpStd),
      qMean: plain(d.qMean),
      qStd: plain(d.qStd),
    };
    if (d.runningMean) drift.runningMean = plain(d.runningMean);
    if (d.runningStd) drift.runningStd = plain(d.runningStd);
    return {
      ...l,
      weightRanges: { min: plain(l.weightRanges.min), max: plain(l.weightRanges.max) },
      channelDrift: drift,
    };
  });
}

export interface StorageEvents {
  /** another tab holds an older version open; ask the user to close it */
  onBlocked?: () => void;
  /** the connection was closed for another tab's upgrade or deletion, or by the browser */
  onClosed?: (reason: 'blocking' | 'deleted' | 'terminated') => void;
}

export interface StorageOptions {
  /** for tests: navigator.storage.estimate stand-in */
  estimate?: () => Promise<StorageEstimate>;
  /** for tests: open this schema version instead of DB_VERSION (a "newer tab") */
  version?: number;
  /** how long an open blocked by another tab may wait before calls fail with STORAGE_BLOCKED (ms) */
  blockedTimeoutMs?: number;
}

/** A newer version of the app in another tab upgraded the database: this tab's code is outdated. */
function outdated(): QpError {
  return new QpError(
    'STORAGE_OUTDATED',
    'A newer version of the playground was opened in another tab and upgraded the stored data, so this tab can no longer read it. Reload this tab; your stored runs are kept.',
    true,
  );
}

function blockedError(): QpError {
  return new QpError(
    'STORAGE_BLOCKED',
    'Another tab with an older version of the playground keeps the stored data open, so this tab cannot upgrade it. Reload or close the other tab; nothing is lost, and this tab will use the storage as soon as it is free.',
    true,
  );
}

function isQuotaError(e: unknown): boolean {
  const name = (e as { name?: string } | null)?.name;
  return name === 'QuotaExceededError' || name === 'NS_ERROR_DOM_QUOTA_REACHED';
}

/** Map a DOMException from IDB to a QpError; QpErrors pass through. */
export function storageError(e: unknown, what: string): QpError {
  if (e instanceof QpError) return e;
  if (isQuotaError(e)) {
    return new QpError(
      'STORAGE_QUOTA',
      `The browser refused to store ${what} because this site's storage quota is full. Nothing was saved. Clear the cache in the Storage panel (or free disk space) and try again.`,
      true,
    );
  }
  const msg = (e as Error | undefined)?.message ?? String(e);
  return new QpError('STORAGE_FAILED', `Storing ${what} in the browser's IndexedDB failed: ${msg}`, false);
}

/** Upgrade steps. Only IDB calls here: the versionchange transaction must not idle. */
function upgrade(
  db: IDBPDatabase<QpSchema>,
  oldVersion: number,
  tx: IDBPTransaction<QpSchema, StoreNames<QpSchema>[], 'versionchange'>,
): void {
  if (oldVersion < 1) {
    db.createObjectStore('models', { keyPath: 'sha256' });
    db.createObjectStore('runs', { keyPath: 'configHash' });
  }
  if (oldVersion < 2) {
    const models = tx.objectStore('models');
    models.createIndex('addedAt', 'addedAt');
    // v1 records have no size: backfill it with a cursor inside the upgrade transaction.
    void models.openCursor().then(async function step(cursor): Promise<void> {
      if (!cursor) return;
      const v = cursor.value as StoredModel;
      if (typeof v.size !== 'number') await cursor.update({ ...v, size: v.bytes.byteLength });
      return step(await cursor.continue());
    });
    tx.objectStore('runs').createIndex('createdAt', 'createdAt');
    db.createObjectStore('crops');
    db.createObjectStore('meta');
  }
  if (oldVersion < 3) {
    db.createObjectStore('runLayers');
    // Move per-layer rows stored inline in a run (none written by the app before v3, but
    // keep whatever is there) to runLayers, packed.
    const runs = tx.objectStore('runs');
    const runLayers = tx.objectStore('runLayers');
    void runs.openCursor().then(async function step(cursor): Promise<void> {
      if (!cursor) return;
      const { layers, ...rest } = cursor.value;
      if (layers) {
        await runLayers.put({ configHash: rest.configHash, layers: packLayers(layers) }, rest.configHash);
        await cursor.update(rest);
      }
      return step(await cursor.continue());
    });
  }
  if (oldVersion < 4) db.createObjectStore('files');
}

/**
 * Typed access to the app's IndexedDB. One instance per realm (worker or page);
 * the connection is opened lazily and reopened after `blocking`/`terminated`.
 */
export class QpStorage {
  private conn: Promise<IDBPDatabase<QpSchema>> | undefined;
  /** what happened to the stored data that the user has not been told yet */
  private lost: 'deleted' | 'terminated' | undefined;
  private everOpened = false;

  constructor(
    readonly name = DB_NAME,
    private readonly events: StorageEvents = {},
    private readonly options: StorageOptions = {},
  ) {}

  /**
   * A sentence about stored data lost since the last call (the database was deleted or
   * cleared while the app was open and has been re-created empty), once; else undefined.
   */
  takeLossNotice(): string | undefined {
    const l = this.lost;
    if (!l || !this.conn) return undefined;
    this.lost = undefined;
    return l === 'deleted'
      ? "The browser's stored data for this playground was deleted while it was open (by another tab or the site-data settings): cached models, preprocessed images and earlier runs are gone. Storage was re-created empty; this run was saved."
      : "The browser closed this playground's stored data while it was open (storage was cleared or evicted): cached models, preprocessed images and earlier runs may be gone. Storage was re-created; this run was saved.";
  }

  /** The open connection (opens or reopens it). Throws STORAGE_FAILED when IDB is unavailable. */
  db(): Promise<IDBPDatabase<QpSchema>> {
    if (!this.conn) {
      if (typeof indexedDB === 'undefined') {
        return Promise.reject(
          new QpError(
            'STORAGE_FAILED',
            'This browser does not offer IndexedDB (private mode?), so models and results cannot be cached.',
            true,
          ),
        );
      }
      let blockedTimer: ReturnType<typeof setTimeout> | undefined;
      let failBlocked!: (e: QpError) => void;
      const blocked = new Promise<never>((_, reject) => (failBlocked = reject));
      blocked.catch(() => undefined);
      // eslint-disable-next-line prefer-const -- assigned once `p` exists; the callbacks below read it later
      let conn: Promise<IDBPDatabase<QpSchema>> | undefined;
      const mine = () => this.conn !== undefined && (this.conn === conn || this.conn === p);
      const p: Promise<IDBPDatabase<QpSchema>> = openDB<QpSchema>(this.name, this.options.version ?? DB_VERSION, {
        upgrade: (db, oldVersion, _newVersion, tx) => {
          // A database this realm had open that is back at version 0 was deleted meanwhile.
          if (oldVersion === 0 && this.everOpened) this.lost ??= 'deleted';
          upgrade(db, oldVersion, tx);
        },
        blocked: () => {
          this.events.onBlocked?.();
          // Calls fail after a grace period instead of hanging; the open itself keeps waiting.
          blockedTimer = setTimeout(() => failBlocked(blockedError()), this.options.blockedTimeoutMs ?? 3000);
        },
        blocking: (_current, next, event) => {
          // Another tab wants a newer version (or deletes the database): close at once,
          // synchronously, so its open is not blocked; reopen on next use.
          (event.target as IDBDatabase).close();
          if (mine()) this.conn = undefined;
          this.events.onClosed?.(next === null ? 'deleted' : 'blocking');
        },
        terminated: () => {
          if (mine()) this.conn = undefined;
          this.lost ??= 'terminated';
          this.events.onClosed?.('terminated');
        },
      });
      conn = Promise.race([p, blocked]);
      this.conn = conn;
      p.then(
        () => {
          clearTimeout(blockedTimer);
          this.everOpened = true;
          if (this.conn === conn) this.conn = p; // a blocked open that completed is usable now
        },
        () => {
          clearTimeout(blockedTimer);
          if (mine()) this.conn = undefined; // retried on next use
        },
      );
    }
    return this.conn.catch((e) => {
      if ((e as { name?: string })?.name === 'VersionError') throw outdated();
      throw storageError(e, 'data');
    });
  }

  async close(): Promise<void> {
    const c = this.conn;
    this.conn = undefined;
    if (c) (await c.catch(() => undefined))?.close();
  }

  // ---- models ----

  async getModel(sha256: string): Promise<StoredModel | undefined> {
    return (await this.db()).get('models', sha256);
  }

  /** Store model bytes. `rec.sha256` must already be computed (never inside the transaction). */
  async putModel(rec: Omit<StoredModel, 'size' | 'addedAt'> & { addedAt?: number }): Promise<void> {
    const full: StoredModel = { ...rec, size: rec.bytes.byteLength, addedAt: rec.addedAt ?? Date.now() };
    await this.write(['models'], `the model "${rec.name}" (${(full.size / 1e6).toFixed(1)} MB)`, (tx) => [
      tx.objectStore('models').put(full),
    ]);
  }

  /** Model metadata without the bytes (walks a cursor so big buffers are not kept). */
  async listModels(): Promise<StoredModelInfo[]> {
    const db = await this.db();
    const out: StoredModelInfo[] = [];
    let cursor = await db.transaction('models').store.index('addedAt').openCursor();
    while (cursor) {
      const { bytes: _bytes, ...info } = cursor.value;
      out.push(info);
      cursor = await cursor.continue();
    }
    return out;
  }

  async deleteModel(sha256: string): Promise<void> {
    await this.write(['models'], 'a model deletion', (tx) => [tx.objectStore('models').delete(sha256)]);
  }

  // ---- crops ----

  async getCrop(key: string): Promise<Uint8Array | undefined> {
    return (await this.db()).get('crops', key);
  }

  async putCrop(key: string, crop: Uint8Array): Promise<void> {
    await this.write(['crops'], 'a preprocessed image', (tx) => [tx.objectStore('crops').put(crop, key)]);
  }

  /**
   * A CropStore for the pipeline. Caching is best effort: when the quota is full the
   * store stops writing (reads still hit) and `quotaHit` tells the caller to warn.
   */
  cropStore(): CropStore & { readonly quotaHit: boolean; hits: number; misses: number } {
    const getCrop = (key: string) => this.getCrop(key);
    const putCrop = (key: string, crop: Uint8Array) => this.putCrop(key, crop);
    return {
      quotaHit: false,
      hits: 0,
      misses: 0,
      async get(key) {
        const v = await getCrop(key);
        if (v) this.hits++;
        else this.misses++;
        return v;
      },
      async put(key, crop) {
        if (this.quotaHit) return;
        try {
          await putCrop(key, crop);
        } catch (e) {
          if (e instanceof QpError && e.code === 'STORAGE_QUOTA') (this as { quotaHit: boolean }).quotaHit = true;
          else throw e;
        }
      },
    };
  }

  // ---- downloaded registry files ----

  async getFile(sha256: string): Promise<Uint8Array | undefined> {
    return (await this.db()).get('files', sha256);
  }

  /** Stores verified bytes under their sha256 (downloads.ts checks them before). */
  async putFile(sha256: string, bytes: Uint8Array, name: string): Promise<void> {
    await this.write(['files'], `the file "${name}"`, (tx) => [tx.objectStore('files').put(bytes, sha256)]);
  }

  /**
   * The ByteStore of verified downloads: images in `files`, a model's bytes in `models`
   * (with its name and URL, as a model loaded by URL is). Like the crop store it stops
   * writing when the quota is full (`quotaHit`); reads still hit.
   */
  byteStore(kind: 'image' | 'model'): ByteStore & { readonly quotaHit: boolean } {
    const getModel = (sha: string) => this.getModel(sha);
    const putModel = (rec: Parameters<QpStorage['putModel']>[0]) => this.putModel(rec);
    const getFile = (sha: string) => this.getFile(sha);
    const putFile = (sha: string, b: Uint8Array, name: string) => this.putFile(sha, b, name);
    const state = { quotaHit: false };
    return {
      get quotaHit() {
        return state.quotaHit;
      },
      async get(sha256) {
        return kind === 'model' ? (await getModel(sha256))?.bytes : getFile(sha256);
      },
      async put(sha256, bytes, info) {
        if (state.quotaHit) return;
        try {
          if (kind === 'model') await putModel({ sha256, bytes, name: info.name, url: info.url });
          else await putFile(sha256, bytes, info.name);
        } catch (e) {
          if (e instanceof QpError && e.code === 'STORAGE_QUOTA') state.quotaHit = true;
          else throw e;
        }
      },
    };
  }

  // ---- runs ----

  /** One stored run with its per-layer rows (when it was analysed). */
  async getRun(configHash: string): Promise<ExperimentResult | undefined> {
    const tx = (await this.db()).transaction(['runs', 'runLayers']);
    const [run, layers] = await Promise.all([
      tx.objectStore('runs').get(configHash),
      tx.objectStore('runLayers').get(configHash),
    ]);
    await tx.done;
    if (!run) return undefined;
    return layers ? { ...run, layers: unpackLayers(layers.layers) } : run;
  }

  /**
   * Store a result by its config hash, replacing the one stored before (a run without
   * analysis also removes the earlier run's per-layer rows: they belong to its numbers).
   */
  async putRun(r: ExperimentResult): Promise<void> {
    const { layers, ...rest } = r;
    const packed: StoredLayers | undefined = layers
      ? { configHash: r.configHash, layers: packLayers(layers) }
      : undefined;
    await this.write(['runs', 'runLayers'], 'the run result', (tx) => [
      tx.objectStore('runs').put(rest),
      packed ? tx.objectStore('runLayers').put(packed, r.configHash) : tx.objectStore('runLayers').delete(r.configHash),
    ]);
  }

  /** All stored runs, oldest first, without their per-layer rows (getRun has them). */
  async listRuns(): Promise<ExperimentResult[]> {
    return (await this.db()).getAllFromIndex('runs', 'createdAt');
  }

  async deleteRun(configHash: string): Promise<void> {
    await this.write(['runs', 'runLayers'], 'a run deletion', (tx) => [
      tx.objectStore('runs').delete(configHash),
      tx.objectStore('runLayers').delete(configHash),
    ]);
  }

  // ---- meta ----

  async getMeta<T>(key: string): Promise<T | undefined> {
    return (await (await this.db()).get('meta', key)) as T | undefined;
  }

  async setMeta(key: string, value: unknown): Promise<void> {
    await this.write(['meta'], `setting "${key}"`, (tx) => [tx.objectStore('meta').put(value, key)]);
  }

  // ---- cache ----

  async estimate(): Promise<CacheEstimate> {
    const db = await this.db();
    const tx = db.transaction(['models', 'crops', 'runs']);
    let modelBytes = 0;
    let models = 0;
    // Walk keys and sizes only through the index cursor values; model records are few.
    let mc = await tx.objectStore('models').openCursor();
    while (mc) {
      models++;
      modelBytes += mc.value.size ?? mc.value.bytes.byteLength;
      mc = await mc.continue();
    }
    const crops = await tx.objectStore('crops').count();
    const firstCrop = crops ? await tx.objectStore('crops').openCursor() : null;
    // Crops of one spec all have the same size; sum by count × first size (no 1000× reads).
    const cropBytes = firstCrop ? crops * firstCrop.value.byteLength : 0;
    const runs = await tx.objectStore('runs').count();
    await tx.done;
    const est =
      this.options.estimate ??
      (typeof navigator !== 'undefined' ? navigator.storage?.estimate?.bind(navigator.storage) : undefined);
    if (est) {
      try {
        const e = await est();
        if (typeof e.usage === 'number') {
          return {
            usage: e.usage,
            quota: e.quota,
            models,
            modelBytes,
            crops,
            cropBytes,
            runs,
            source: 'navigator.storage',
          };
        }
      } catch {
        /* fall back to summed sizes */
      }
    }
    return { usage: modelBytes + cropBytes, models, modelBytes, crops, cropBytes, runs, source: 'summed' };
  }

  /** Delete cached data. Default: models, downloaded files and crops (runs are the user's history, kept). Clearing runs clears their layers. */
  async clear(
    stores: ('models' | 'crops' | 'files' | 'runs' | 'meta')[] = ['models', 'crops', 'files'],
  ): Promise<void> {
    const all: StoreName[] = stores.includes('runs') ? [...stores, 'runLayers'] : stores;
    await this.write(all, 'the cache clearing', (tx) => all.map((s) => tx.objectStore(s).clear()));
  }

  /**
   * One readwrite transaction: issue the requests synchronously, then await them and
   * `tx.done`. Any failure aborts the whole transaction (nothing partial) and is mapped.
   */
  private async write<S extends StoreName[]>(
    stores: S,
    what: string,
    body: (tx: IDBPTransaction<QpSchema, StoreNames<QpSchema>[], 'readwrite'>) => Promise<unknown>[],
  ): Promise<void> {
    const db = await this.db();
    const tx = db.transaction(stores, 'readwrite');
    const done = tx.done;
    done.catch(() => undefined); // observed below; avoid an unhandled rejection on abort
    try {
      const reqs = body(tx as unknown as IDBPTransaction<QpSchema, StoreNames<QpSchema>[], 'readwrite'>);
      await Promise.all(reqs);
      await done;
    } catch (e) {
      try {
        tx.abort();
      } catch {
        /* already finished or aborted */
      }
      // The transaction error (e.g. QuotaExceededError on commit) says more than AbortError.
      const txErr = (tx as unknown as { error?: unknown }).error;
      throw storageError(isQuotaError(txErr) ? txErr : e, what);
    }
  }
}

/** The default storage of this realm (worker or page). */
let shared: QpStorage | undefined;
export function getStorage(events?: StorageEvents): QpStorage {
  shared ??= new QpStorage(DB_NAME, events);
  return shared;
}
