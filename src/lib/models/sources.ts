/**
 * Where a registry model's file can be had, in order: the configured mirrors (by the path
 * convention `models/<public file name>`, and by their catalog, which also lists copies
 * under other names), then the public URL. A file whose sha256 is any known copy of the
 * model's weights (registry.ts knownHashes: the downloads, and re-assembled copies such as
 * the development MobileNet-V2) is that model; a link asks for its exact sha256, so only
 * that file serves it, while "Try it" takes any copy, preferring a mirror's over the
 * internet. Also the one verified, cached download of such a file.
 * Must not: parse ONNX (identify.ts does, after the bytes arrive).
 */
import { catalogUrl, type Catalog } from '../data/catalog.ts';
import {
  downloadError,
  getFile,
  DownloadError,
  type Attempt,
  type ByteStore,
  type DownloadEnv,
  type WantedFile,
} from '../data/downloads.ts';
import { QpError } from '../util/errors.ts';
import { knownHashes, type ModelEntry } from './registry.ts';

export interface MirrorInfo {
  /** base URL ending in "/" */
  base: string;
  catalog?: Catalog;
}

/** The public file name of a download: the last segment of its URL. */
export function publicModelFileName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '');
}

/** A copy of a model's weights: a file with its size, sha256 and addresses. */
export interface ModelCandidate extends WantedFile {
  /** true for the registry's own download with this sha256; false for another known copy */
  registryFile: boolean;
}

/**
 * The files that can serve `entry`, in the order to try them. With `sha256` (a link), only
 * that file; without, the default download and every other known copy a mirror lists,
 * mirrors first.
 */
export function modelCandidates(
  entry: ModelEntry,
  opts: { sha256?: string; mirrors?: readonly MirrorInfo[] } = {},
): ModelCandidate[] {
  const mirrors = opts.mirrors ?? [];
  const known = new Set(knownHashes(entry));
  if (opts.sha256 && !known.has(opts.sha256)) return [];
  const bySha = new Map<string, ModelCandidate>();
  const add = (sha256: string, bytes: number, name: string, url: string, registryFile: boolean) => {
    const c = bySha.get(sha256) ?? { name, bytes, sha256, urls: [], registryFile };
    if (!c.urls.includes(url)) c.urls.push(url);
    bySha.set(sha256, c);
  };
  const wanted = (sha: string) => (opts.sha256 ? sha === opts.sha256 : true);
  // the order of insertion is the order of trial: mirrors (each: its catalog's copies, the
  // default download first, then the path convention), then the public downloads
  const downloads = opts.sha256 ? entry.downloads : entry.downloads.slice(0, 1);
  for (const m of mirrors) {
    const listed = (m.catalog?.files ?? []).filter((f) => known.has(f.sha256) && wanted(f.sha256));
    listed.sort(
      (a, b) => Number(b.sha256 === entry.downloads[0].sha256) - Number(a.sha256 === entry.downloads[0].sha256),
    );
    for (const f of listed) {
      const d = entry.downloads.find((x) => x.sha256 === f.sha256);
      add(f.sha256, f.bytes, f.path.split('/').pop() ?? f.path, catalogUrl(m.base, f.path), !!d);
    }
    if (m.catalog) continue; // a catalog lists all the mirror has: no guessing
    for (const d of downloads.filter((x) => wanted(x.sha256))) {
      const file = publicModelFileName(d.url);
      add(d.sha256, d.bytes, file, `${m.base}models/${encodeURIComponent(file)}`, true);
    }
  }
  for (const d of downloads.filter((x) => wanted(x.sha256))) {
    add(d.sha256, d.bytes, publicModelFileName(d.url), d.url, true);
  }
  return [...bySha.values()];
}

/**
 * The bytes of the first candidate a store holds or a URL gives, verified. Throws
 * DownloadError listing every attempt (MODEL_SHA_MISMATCH when a file differed), or
 * ARG_INVALID when no candidate exists (a link's sha256 that is no copy of this model).
 */
export async function getModelFile(
  env: DownloadEnv,
  entry: ModelEntry,
  candidates: readonly ModelCandidate[],
  opts: { store?: ByteStore; signal?: AbortSignal; onBytes?: (n: number) => void } = {},
): Promise<{ bytes: Uint8Array; sha256: string; url?: string; cached: boolean; registryFile: boolean }> {
  if (!candidates.length)
    throw new QpError(
      'ARG_INVALID',
      `No known copy of ${entry.label} has the requested sha256; open the model file the link was made with.`,
    );
  for (const c of candidates) {
    const stored = await opts.store?.get(c.sha256);
    if (stored?.byteLength === c.bytes) {
      const r = await getFile(env, c, { store: opts.store, signal: opts.signal, kind: 'model' });
      return { ...r, sha256: c.sha256, registryFile: c.registryFile };
    }
  }
  const attempts: Attempt[] = [];
  for (const c of candidates) {
    try {
      const r = await getFile(env, c, { ...opts, kind: 'model' });
      return { ...r, sha256: c.sha256, registryFile: c.registryFile };
    } catch (e) {
      if (!(e instanceof DownloadError)) throw e;
      attempts.push(...e.attempts);
      if (e.code === 'DOWNLOAD_OFFLINE') break;
    }
  }
  const first = candidates[0];
  throw downloadError({ ...first, name: `${entry.label} (${first.name})` }, attempts, 'model');
}
