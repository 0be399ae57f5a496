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
import { MODEL_REGISTRY } from '../models/registry.ts';

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

/** The first step that can load the linked model with no click, else the file to ask for. */
export function planModel(
  want: NonNullable<LinkExtras['model']>,
  have: { cached: readonly { sha256: string }[]; devFiles: readonly { name: string; url: string }[] },
): ModelStep {
  const { sha256, source } = want;
  const src: ModelSourceRef = source ?? { kind: 'file', name: 'the model file' };
  if (have.cached.some((m) => m.sha256 === sha256))
    return { kind: 'load', src: { kind: 'cached', sha256 }, via: 'cache', source: src };
  for (const e of MODEL_REGISTRY) {
    const d = e.downloads.find((x) => x.sha256 === sha256);
    // a direct, checked download: a registry load could pick a cached copy with other bytes
    if (d)
      return {
        kind: 'load',
        src: { kind: 'url', url: d.url, name: e.label, expect: { bytes: d.bytes, sha256 } },
        via: 'registry',
        source: { kind: 'registry', id: e.id },
      };
  }
  const name = sourceFileName(source);
  const dev = name ? have.devFiles.find((f) => f.name === name) : undefined;
  if (dev)
    return {
      kind: 'load',
      src: { kind: 'url', url: dev.url, name: dev.name, expectSha256: sha256 },
      via: 'dev',
      source: { kind: 'dev', name: dev.name },
    };
  if (source?.kind === 'url')
    return { kind: 'load', src: { kind: 'url', url: source.url, expectSha256: sha256 }, via: 'url', source };
  return { kind: 'ask', name: name ?? 'the model file', sha256 };
}

export type DataStep =
  | { kind: 'dev'; source: DataSourceRef }
  | { kind: 'url'; baseUrl: string; source: DataSourceRef }
  | { kind: 'ask'; name: string; fingerprint: string };

/** How to get the linked images: the dev sample, a manifest URL, or ask for the folder. */
export function planData(want: NonNullable<LinkExtras['data']>, devSample: boolean): DataStep {
  const s = want.source;
  if (s?.kind === 'url') return { kind: 'url', baseUrl: s.url, source: s };
  const name = s?.name ?? 'the image folder';
  if (devSample && name === DEV_SAMPLE) return { kind: 'dev', source: { kind: 'dev', name } };
  return { kind: 'ask', name, fingerprint: want.fingerprint };
}

/** What a loaded model's source is called in a link. */
export function modelSourceOf(src: ModelSource, loadedName: string): ModelSourceRef {
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
      return { kind: 'file', name: loadedName };
  }
}
