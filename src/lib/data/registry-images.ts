/**
 * A registry image set ready to run on: its Dataset, whose items read their file through a
 * verified, cached download from the mirrors and then the public sources, and a prefetch
 * that downloads just the files a config's split needs, in parallel, with progress, before
 * a run starts. The worker (browser) and the CLI (Node) both use it, with their own fetch
 * and store.
 * Must not: know where the store keeps bytes, or decode images.
 */
import {
  filesForSplit,
  getImageSet,
  imageSetDataset,
  imageUrls,
  type ImageFile,
  type ImageSetEntry,
  type ImageSetManifest,
} from './image-sets.ts';
import {
  getFile,
  getFiles,
  type ByteStore,
  type DownloadEnv,
  type TransferProgress,
  type WantedFile,
} from './downloads.ts';
import type { FileDataset } from './dataset.ts';

export interface RegistryImagesOptions {
  env: DownloadEnv;
  /** verified bytes by sha256; without one, downloaded files are kept in memory */
  store?: ByteStore;
  /** mirror base URLs (ending in "/"), tried in order before the public sources */
  mirrors?: readonly string[];
  /** the signal of the run that reads the items (items read lazily) */
  readSignal?: () => AbortSignal | undefined;
}

export interface RegistryImages {
  entry: ImageSetEntry;
  manifest: ImageSetManifest;
  dataset: FileDataset;
  /** what a file download must be, and its URLs in order */
  wanted(f: ImageFile): WantedFile;
  /** the files a config's split reads */
  filesFor(cfg: { calib: number; eval: number; seed: number }): ImageFile[];
  /** downloads the files not stored yet; resolves when all are verified and stored */
  prefetch(
    files: readonly ImageFile[],
    opts?: { signal?: AbortSignal; onProgress?: (p: TransferProgress) => void; concurrency?: number },
  ): Promise<void>;
}

/** Opens the registry image set `id` (ARG_INVALID for an unknown one). */
export async function openRegistryImages(id: string, opts: RegistryImagesOptions): Promise<RegistryImages> {
  const entry = getImageSet(id);
  const manifest = await entry.load();
  const mirrors = opts.mirrors ?? [];
  const wanted = (f: ImageFile): WantedFile => ({
    name: f.file,
    bytes: f.bytes,
    sha256: f.sha256,
    urls: imageUrls(entry, f.file, mirrors),
  });
  // without a store, prefetched bytes wait here for the run to read them
  const memory = opts.store ? undefined : new Map<string, Uint8Array>();
  const inFlight = new Map<string, Promise<Uint8Array>>();
  const read = (f: ImageFile): Promise<Uint8Array> => {
    const kept = memory?.get(f.sha256);
    if (kept) return Promise.resolve(kept);
    let p = inFlight.get(f.sha256);
    if (!p) {
      p = getFile(opts.env, wanted(f), { store: opts.store, signal: opts.readSignal?.(), kind: 'image' })
        .then((r) => {
          memory?.set(f.sha256, r.bytes);
          return r.bytes;
        })
        .finally(() => inFlight.delete(f.sha256));
      inFlight.set(f.sha256, p);
    }
    return p;
  };
  return {
    entry,
    manifest,
    dataset: imageSetDataset(entry, manifest, read),
    wanted,
    filesFor: (cfg) => filesForSplit(manifest, cfg.calib, cfg.eval, cfg.seed),
    async prefetch(files, o = {}) {
      const todo = memory ? files.filter((f) => !memory.has(f.sha256)) : files;
      await getFiles(opts.env, todo.map(wanted), {
        store: opts.store,
        signal: o.signal,
        concurrency: o.concurrency,
        onProgress: o.onProgress,
        kind: 'image',
        onFile: (i, b) => memory?.set(todo[i].sha256, b),
      });
    },
  };
}
