/**
 * Turn image sources into preprocessed uint8 crops, through an optional crop cache.
 *
 * Why: decoding JPEGs is the slowest part of a run; crops are cached per preprocessing
 * geometry (specKey) and image id, and Node and the browser share this loop.
 * Must not: import node: modules, crash on a bad image (it is skipped with a reason), or
 * let a failing cache write fail the run (the crop is still returned).
 *
 * Cache keys are `${specKey(spec)}/${DECODER_ID}/${item.id}` (with `/${namespace}` before the id
 * when opts.namespace is given): the decoder is part of the key so crops made by an earlier,
 * inexact decoder (jpeg-js) are never reused. The cache trusts ids: two different images with the same id in
 * one store (e.g. two folders that both hold n01440764.JPEG) must use different namespaces.
 */
import type { CropStore, ImageSource, PreprocessSpec } from './types.ts';
import { DECODER_ID, decodeImage, initJpegDecoder } from './decode.ts';
import { preprocessToCrop, specKey, validateSpec } from './preprocess.ts';
import { QpError, throwIfAborted } from '../util/errors.ts';

export interface SkippedImage {
  id: string;
  code: string;
  message: string;
}

export interface PrepareCropsOptions {
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** images read/decoded at the same time (overlaps I/O with decoding); default 4 */
  concurrency?: number;
  /** cache key namespace, e.g. a hash of the data set's location (see header) */
  namespace?: string;
  /**
   * Decode + preprocess elsewhere (the browser's pool of decode workers); default: in this
   * thread. Must give exactly what preprocessToCrop(decodeImage(bytes, id), spec) gives.
   */
  cropper?: Cropper;
}

/** bytes → preprocessed crop, off this thread; errors as decodeImage throws them (QpError). */
export interface Cropper {
  crop(bytes: Uint8Array, id: string, spec: PreprocessSpec): Promise<Uint8Array>;
  /** images worth having in flight at once */
  readonly concurrency: number;
}

export interface PreparedCrops {
  /** one per item, same order; null where the image was skipped */
  crops: (Uint8Array | null)[];
  skipped: SkippedImage[];
  /** cache reads that hit */
  cacheHits: number;
  /** cache writes that failed (the run continues without caching those crops) */
  cacheWriteFailures: number;
}

export function cropCacheKey(spec: PreprocessSpec, id: string, namespace?: string): string {
  const base = `${specKey(spec)}/${DECODER_ID}`;
  return namespace ? `${base}/${namespace}/${id}` : `${base}/${id}`;
}

/** Give the event loop a turn (so abort messages and UI updates get through). */
const yieldToEventLoop = () => new Promise<void>((r) => setTimeout(r, 0));

export async function prepareCrops(
  items: ImageSource[],
  spec: PreprocessSpec,
  store: CropStore | undefined,
  opts: PrepareCropsOptions = {},
): Promise<PreparedCrops> {
  validateSpec(spec);
  const { signal, onProgress, namespace, cropper } = opts;
  const concurrency = Math.max(1, Math.min(32, Math.floor(opts.concurrency ?? cropper?.concurrency ?? 4)));
  if (!cropper) await initJpegDecoder();
  const expected = spec.crop * spec.crop * 3;
  const crops: (Uint8Array | null)[] = new Array(items.length).fill(null);
  const skipped: (SkippedImage | undefined)[] = new Array(items.length);
  let cacheHits = 0;
  let cacheWriteFailures = 0;
  let next = 0;
  let done = 0;
  let lastYield = Date.now();
  throwIfAborted(signal);

  const one = async (i: number): Promise<void> => {
    const item = items[i];
    const key = cropCacheKey(spec, item.id, namespace);
    if (store) {
      let cached: Uint8Array | undefined;
      try {
        cached = await store.get(key);
      } catch {
        cached = undefined; // unreadable cache entry: recompute
      }
      throwIfAborted(signal);
      if (cached && cached.length === expected) {
        crops[i] = cached;
        cacheHits++;
        return;
      }
    }
    let crop: Uint8Array;
    try {
      const bytes = await item.read();
      throwIfAborted(signal);
      crop = cropper ? await cropper.crop(bytes, item.id, spec) : preprocessToCrop(decodeImage(bytes, item.id), spec);
    } catch (e) {
      if (e instanceof QpError && e.code === 'CANCELLED') throw e;
      if (signal?.aborted) throwIfAborted(signal);
      const code = e instanceof QpError ? e.code : 'IMAGE_UNREADABLE';
      const message =
        e instanceof QpError
          ? e.message
          : `Image "${item.id}" could not be read (${e instanceof Error ? e.message : String(e)}). Check the file or remove it from the data set.`;
      skipped[i] = { id: item.id, code, message };
      return;
    }
    crops[i] = crop;
    if (store) {
      try {
        await store.put(key, crop);
      } catch {
        cacheWriteFailures++;
      }
    }
  };

  const worker = async (): Promise<void> => {
    while (next < items.length) {
      throwIfAborted(signal);
      const i = next++;
      await one(i);
      done++;
      onProgress?.(done, items.length);
      if (Date.now() - lastYield > 50) {
        await yieldToEventLoop();
        lastYield = Date.now();
      }
    }
  };

  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, items.length)) }, worker));
  throwIfAborted(signal);
  return { crops, skipped: skipped.filter((s): s is SkippedImage => !!s), cacheHits, cacheWriteFailures };
}
