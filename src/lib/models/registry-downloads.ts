/**
 * One entry point to the registry's files for a realm (the browser worker or the CLI):
 * given how to fetch, where verified bytes are kept and which mirrors to try, it opens a
 * registry image set and gets a registry model's file (a link's exact sha256, or any known
 * copy, mirrors first), reading each mirror's catalog once. The worker passes fetch, the
 * IndexedDB stores and site.json's mirrors; the CLI passes a file-aware fetch, its cache
 * folder and QP_MIRROR (src/cli/registry-downloads.ts).
 * Must not: parse the model (identify.ts does), or decide where bytes are stored.
 */
import { loadCatalog } from '../data/catalog.ts';
import type { ByteStore, DownloadEnv } from '../data/downloads.ts';
import { openRegistryImages, type RegistryImages } from '../data/registry-images.ts';
import { getModelEntry } from './registry.ts';
import { getModelFile, modelCandidates, type MirrorInfo } from './sources.ts';

export interface RegistryDownloadsOptions {
  env: DownloadEnv;
  imageStore?: ByteStore;
  modelStore?: ByteStore;
  /** mirror base URLs ending in "/", in order */
  mirrors?: readonly string[];
}

export interface RegistryDownloads {
  mirrors: readonly string[];
  /** notices from mirrors whose catalog could not be read (they are still used by file name) */
  notices: string[];
  openImages(id: string, readSignal?: () => AbortSignal | undefined): Promise<RegistryImages>;
  /** a registry model's file: `sha256` (a link's) for that exact file, else any known copy */
  modelFile(
    id: string,
    opts?: { sha256?: string; signal?: AbortSignal; onBytes?: (n: number) => void },
  ): Promise<{ bytes: Uint8Array; sha256: string; url?: string; cached: boolean; registryFile: boolean }>;
}

export function registryDownloads(opts: RegistryDownloadsOptions): RegistryDownloads {
  const mirrors = opts.mirrors ?? [];
  const notices: string[] = [];
  let infos: Promise<MirrorInfo[]> | undefined;
  const mirrorInfos = (signal?: AbortSignal) =>
    (infos ??= Promise.all(
      mirrors.map(async (base) => {
        const r = await loadCatalog(opts.env.fetch, base, signal);
        if (r.notice) notices.push(r.notice);
        return { base, ...(r.catalog ? { catalog: r.catalog } : {}) };
      }),
    ).catch((e: unknown) => {
      infos = undefined; // a cancelled read is tried again next time
      throw e;
    }));
  return {
    mirrors,
    notices,
    openImages: (id, readSignal) =>
      openRegistryImages(id, { env: opts.env, store: opts.imageStore, mirrors, readSignal }),
    async modelFile(id, o = {}) {
      const entry = getModelEntry(id);
      const candidates = modelCandidates(entry, { sha256: o.sha256, mirrors: await mirrorInfos(o.signal) });
      return getModelFile(opts.env, entry, candidates, {
        store: opts.modelStore,
        signal: o.signal,
        onBytes: o.onBytes,
      });
    },
  };
}
