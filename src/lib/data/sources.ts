/**
 * Data and model bytes from the web and from picked files, without the file system:
 * a checked fetch with full-sentence errors, a streaming download with progress, the
 * class index from a URL, an image list from a manifest (`{files, classIndex}`) and a
 * set of picked files with an optional class index among them. The worker uses these;
 * Node reads folders with dataset.node.ts. Both end in datasetFromFiles.
 */
import { readModelBody } from './read-model.ts';
import { QpError } from '../util/errors.ts';
import type { DownloadProgress } from '../protocol/api.ts';
import { datasetFromFiles, loadClassIndex, type FileDataset, type NamedFile } from './dataset.ts';

/** Where relative URLs resolve and how they are fetched (injected for tests). */
export interface Fetcher {
  fetch: typeof fetch;
  /** base URL relative URLs resolve against (the page's origin in a worker) */
  base: string;
}

export type FetchErrorCode = 'MODEL_DOWNLOAD_FAILED' | 'DATA_NOT_FOUND';

export function absoluteUrl(f: Fetcher, url: string): string {
  return new URL(url, f.base).href;
}

/** GET `url`; a network failure or a non-2xx status becomes QpError `code` naming `what`. */
export async function fetchChecked(
  f: Fetcher,
  url: string,
  signal: AbortSignal,
  what: string,
  code: FetchErrorCode,
): Promise<Response> {
  let res: Response;
  try {
    res = await f.fetch(absoluteUrl(f, url), { signal });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new QpError(
      code,
      `Downloading ${what} from ${url} failed: ${(e as Error).message}. Check the address and your connection (the server must allow cross-origin requests).`,
    );
  }
  if (!res.ok)
    throw new QpError(
      code,
      `Downloading ${what} from ${url} failed: the server answered ${res.status} ${res.statusText}.`,
    );
  return res;
}

/**
 * Downloads a model file with progress. A web page (text/html: usually a server's
 * fallback for a missing file) is refused with MODEL_NOT_ONNX before reading it.
 */
export async function downloadModel(
  f: Fetcher,
  url: string,
  name: string,
  signal: AbortSignal,
  expectedBytes: number | undefined,
  onProgress?: (p: DownloadProgress) => void,
): Promise<Uint8Array> {
  const res = await fetchChecked(f, url, signal, `the model "${name}"`, 'MODEL_DOWNLOAD_FAILED');
  const type = res.headers.get('content-type') ?? '';
  if (type.includes('text/html')) {
    throw new QpError(
      'MODEL_NOT_ONNX',
      `${url} answered with a web page (content type ${type}), not an ONNX model: the file probably does not exist there. Check the address.`,
    );
  }
  const len = Number(res.headers.get('content-length')) || expectedBytes;
  // size limits and interrupted downloads are checked there: nothing partial comes back
  return readModelBody(res, { name, url, signal, total: len, onProgress });
}

/** The class index JSON at `url`, validated (LABELS_INVALID when it is not one). */
export async function classIndexFromUrl(f: Fetcher, url: string, signal: AbortSignal): Promise<[string, string][]> {
  const res = await fetchChecked(f, url, signal, 'the class index', 'DATA_NOT_FOUND');
  let json: unknown;
  try {
    json = await res.json();
  } catch {
    throw new QpError(
      'LABELS_INVALID',
      `The class index at ${url} is not JSON. It should look like imagenet_class_index.json.`,
    );
  }
  return loadClassIndex(json);
}

/**
 * The data set listed by `${baseUrl}manifest.json` (`{"files": [...], "classIndex"?: url}`);
 * the class index is `classIndexUrl`, else the manifest's, else imagenet_class_index.json
 * beside it. Images are fetched lazily with `imageSignal()` (the signal of the run that
 * reads them). Throws DATA_NOT_FOUND for a missing or malformed manifest.
 */
export async function datasetFromManifest(
  f: Fetcher,
  baseUrl: string,
  signal: AbortSignal,
  opts: { classIndexUrl?: string; imageSignal?: () => AbortSignal | undefined } = {},
): Promise<FileDataset> {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const res = await fetchChecked(f, `${base}manifest.json`, signal, 'the image list (manifest.json)', 'DATA_NOT_FOUND');
  let manifest: { files?: unknown; classIndex?: unknown };
  try {
    manifest = await res.json();
  } catch {
    throw new QpError(
      'DATA_NOT_FOUND',
      `${base}manifest.json is not JSON. It must be {"files": ["n01440764.JPEG", …]}.`,
    );
  }
  if (!Array.isArray(manifest.files) || !manifest.files.every((x) => typeof x === 'string')) {
    throw new QpError(
      'DATA_NOT_FOUND',
      `${base}manifest.json has no "files" list of names. It must be {"files": ["n01440764.JPEG", …]}.`,
    );
  }
  const ciUrl =
    opts.classIndexUrl ??
    (typeof manifest.classIndex === 'string'
      ? new URL(manifest.classIndex, absoluteUrl(f, base)).href
      : `${base}imagenet_class_index.json`);
  const classIndex = await classIndexFromUrl(f, ciUrl, signal);
  const files: NamedFile[] = (manifest.files as string[]).map((name) => ({
    name,
    read: async () => {
      const r = await fetchChecked(
        f,
        `${base}${encodeURIComponent(name)}`,
        opts.imageSignal?.() ?? signal,
        `image ${name}`,
        'DATA_NOT_FOUND',
      );
      if ((r.headers.get('content-type') ?? '').includes('text/html')) {
        throw new QpError('IMAGE_UNREADABLE', `${base}${name} answered with a web page, not an image.`);
      }
      return new Uint8Array(await r.arrayBuffer());
    },
  }));
  return datasetFromFiles(files, classIndex, base);
}

/**
 * The data set of picked files (a folder pick keeps webkitRelativePath). A .json among
 * them is the class index; without one, `fallbackClassIndex()` supplies it or says there
 * is none (then LABELS_INVALID tells the user to add it).
 */
export async function datasetFromPickedFiles(
  picked: File[],
  fallbackClassIndex: () => Promise<[string, string][] | undefined>,
): Promise<FileDataset> {
  const json = picked.find((f) => f.name.toLowerCase().endsWith('.json'));
  // A folder pick names files "<folder>/<path>": names are kept relative to that folder,
  // as the CLI names a folder's files, so both give the same fingerprint; the folder's
  // name becomes the data set's name.
  const rel = (f: File) => (f as File & { webkitRelativePath?: string }).webkitRelativePath || '';
  const tops = new Set(picked.map((f) => (rel(f).includes('/') ? rel(f).split('/')[0] : '')));
  const folder = tops.size === 1 ? [...tops][0] : '';
  const named = (f: File): NamedFile => ({
    name: folder ? rel(f).slice(folder.length + 1) : rel(f) || f.name,
    read: async () => new Uint8Array(await f.arrayBuffer()),
  });
  const files = picked.filter((f) => f !== json).map(named);
  let classIndex: [string, string][] | undefined;
  if (json) {
    try {
      classIndex = loadClassIndex(JSON.parse(await json.text()));
    } catch (e) {
      if (e instanceof QpError) throw e;
      throw new QpError('LABELS_INVALID', `"${json.name}" is not valid JSON, so it cannot be used as the class index.`);
    }
  } else {
    classIndex = await fallbackClassIndex();
  }
  if (!classIndex) {
    throw new QpError(
      'LABELS_INVALID',
      'No class index was given. Add imagenet_class_index.json (the Keras class index) to the files you pick, so images can be labelled by their WordNet id.',
    );
  }
  return datasetFromFiles(files, classIndex, folder || 'files');
}
