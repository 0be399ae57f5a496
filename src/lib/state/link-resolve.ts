/**
 * How a shared link's model and images are found, in order, without guessing: the model
 * by its sha256 in this browser's cache → a registry download with that sha256 → a file
 * of the link's name on the dev server (checked against the sha256 once loaded) → the
 * link's source URL (checked too); only a local file is asked for. Images: the dev sample
 * or the manifest URL the link names (checked against its fingerprint); a local folder is
 * asked for. Pure: the plan is data, AppState carries it out.
 */
import type { DataSourceRef, LinkExtras, ModelSourceRef } from '../config/link.ts';
import type { ModelSource } from '../protocol/api.ts';
import { findModelBySha256 } from '../models/registry.ts';

export const DEV_MODELS = '/shared-data/models/';
export const DEV_SAMPLE = 'imagenet-sample';

export type ModelStep =
  | { kind: 'load'; src: ModelSource; via: 'cache' | 'registry' | 'dev' | 'url'; source: ModelSourceRef }
  /** ask the user for this file; nothing else can be loaded without guessing */
  | { kind: 'ask'; name: string; sha256: string };

/** The name a model source gives its file ("mobilenet.onnx"). */
export function sourceFileName(s: ModelSourceRef | undefined): string | undefined {
  if (!s) return undefined;
  if (s.kind === 'registry') return undefined;
  if (s.kind === 'url') {
    try {
      return decodeURIComponent(new URL(s.url, 'http://x/').pathname.split('/').pop() || '') || undefined;
    } catch {
      return undefined;
    }
  }
  return s.name;
}

/**
 * The first step that can load the linked model with no click, else the file to ask for:
 * this browser's cache → the dev server's file of the link's name → the registry (the exact
 * file, from the site's mirrors or its public URL; any known copy of a registry model's
 * weights qualifies) → the link's URL → ask. A registry step can still fail where no mirror
 * has that copy; the ask then offers the registry's own copy (`registry`).
 */
export function planModel(
  want: NonNullable<LinkExtras['model']>,
  have: { cached: readonly { sha256: string }[]; devFiles: readonly { name: string; url: string }[] },
): ModelStep {
  const { sha256, source } = want;
  const src: ModelSourceRef = source ?? { kind: 'file', name: 'the model file' };
  if (have.cached.some((m) => m.sha256 === sha256))
    return { kind: 'load', src: { kind: 'cached', sha256 }, via: 'cache', source: src };
  const name = sourceFileName(source);
  const dev = name ? have.devFiles.find((f) => f.name === name) : undefined;
  if (dev)
    return {
      kind: 'load',
      src: { kind: 'url', url: dev.url, name: dev.name, expectSha256: sha256 },
      via: 'dev',
      source: { kind: 'dev', name: dev.name },
    };
  const entry = findModelBySha256(sha256);
  if (entry)
    return {
      kind: 'load',
      src: { kind: 'registry', id: entry.id, sha256 },
      via: 'registry',
      source: source ?? { kind: 'registry', id: entry.id },
    };
  if (source?.kind === 'url')
    return { kind: 'load', src: { kind: 'url', url: source.url, expectSha256: sha256 }, via: 'url', source };
  return { kind: 'ask', name: name ?? 'the model file', sha256 };
}

export type DataStep =
  | { kind: 'dev'; source: DataSourceRef }
  | { kind: 'registry'; id: string; source: DataSourceRef }
  | { kind: 'url'; baseUrl: string; source: DataSourceRef }
  | { kind: 'ask'; name: string; fingerprint: string };

/** A data source's name in a sentence. */
export function dataSourceName(s: DataSourceRef | undefined): string {
  if (!s) return 'the image folder';
  return s.kind === 'url' ? s.url : s.kind === 'registry' ? s.id : s.name;
}

/**
 * How to get the linked images: the sample from the dev server where it has one (the
 * registry's ImageNet sample and the dev server's are the same files, one fingerprint),
 * else the registry image set, a manifest URL, or ask for the folder. A folder named like
 * the sample is taken for it: the images are refused unless the fingerprint matches.
 */
export function planData(want: NonNullable<LinkExtras['data']>, devSample: boolean): DataStep {
  const s = want.source;
  if (s?.kind === 'url') return { kind: 'url', baseUrl: s.url, source: s };
  // the CLI names a folder of the sample `folder:imagenet-sample`; loading checks the fingerprint either way
  const sample = s?.kind === 'registry' ? s.id === DEV_SAMPLE : s?.name === DEV_SAMPLE;
  if (sample && devSample) return { kind: 'dev', source: { kind: 'dev', name: DEV_SAMPLE } };
  if (s?.kind === 'registry' || sample) {
    const id = s?.kind === 'registry' ? s.id : DEV_SAMPLE;
    return { kind: 'registry', id, source: { kind: 'registry', id } };
  }
  return { kind: 'ask', name: dataSourceName(s), fingerprint: want.fingerprint };
}

/**
 * What a loaded model's source is called in a link. A registry model (or a known copy of its
 * weights) is named by the registry, wherever this browser got it, so the link loads it on any
 * site (the sha256 beside it keeps the exact file).
 */
export function modelSourceOf(src: ModelSource, loaded: { name: string; sha256: string }): ModelSourceRef {
  const entry = findModelBySha256(loaded.sha256);
  const loadedName = loaded.name;
  switch (src.kind) {
    case 'registry':
      return { kind: 'registry', id: src.id };
    case 'url':
      return src.url.startsWith(DEV_MODELS)
        ? { kind: 'dev', name: src.name ?? loadedName }
        : { kind: 'url', url: src.url };
    case 'bytes':
      return { kind: 'file', name: src.name };
    case 'cached':
      return entry ? { kind: 'registry', id: entry.id } : { kind: 'file', name: loadedName };
  }
}
