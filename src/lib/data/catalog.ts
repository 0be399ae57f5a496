/**
 * A mirror's `catalog.json`: every file it holds, with size and sha256, written by `npm
 * run mirror` and read by clients to find a model copy under a name the path convention
 * cannot guess (the development copy of MobileNet-V2, for one). A mirror without a catalog
 * still serves files under their public names. Pure apart from an injected fetch.
 */
import { QpError } from '../util/errors.ts';

export const CATALOG_FILE = 'catalog.json';
export const CATALOG_FORMAT = 1;

export interface CatalogFile {
  /** relative to the mirror's root, "/" separated: `models/x.onnx`, `imagenet-sample/n01440764_tench.JPEG` */
  path: string;
  bytes: number;
  sha256: string;
  /** the registry model whose weights the file holds */
  model?: string;
  /** the registry image set the file belongs to */
  imageSet?: string;
}

export interface Catalog {
  format: typeof CATALOG_FORMAT;
  files: CatalogFile[];
}

const bad = (where: string, what: string) =>
  new QpError(
    'CONFIG_INVALID',
    `${where} is not a mirror catalog: ${what}. Rewrite the mirror with \`npm run mirror\`.`,
  );

/** Parses and checks a catalog. Throws CONFIG_INVALID naming the problem. */
export function parseCatalog(text: string, where = CATALOG_FILE): Catalog {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw bad(where, `it is not valid JSON (${(e as Error).message})`);
  }
  const c = json as { format?: unknown; files?: unknown };
  if (!c || typeof c !== 'object' || c.format !== CATALOG_FORMAT)
    throw bad(where, `"format" must be ${CATALOG_FORMAT}`);
  if (!Array.isArray(c.files)) throw bad(where, 'it has no "files" list');
  const files = c.files.map((f: unknown, i): CatalogFile => {
    const x = f as Record<string, unknown>;
    const ok =
      x &&
      typeof x.path === 'string' &&
      x.path !== '' &&
      !x.path.split('/').some((p) => p === '..' || p === '') &&
      Number.isInteger(x.bytes) &&
      (x.bytes as number) >= 0 &&
      typeof x.sha256 === 'string' &&
      /^[0-9a-f]{64}$/.test(x.sha256) &&
      (x.model === undefined || typeof x.model === 'string') &&
      (x.imageSet === undefined || typeof x.imageSet === 'string');
    if (!ok) throw bad(where, `entry ${i + 1} needs a relative "path", whole "bytes" and a 64-digit "sha256"`);
    return {
      path: x.path as string,
      bytes: x.bytes as number,
      sha256: x.sha256 as string,
      ...(x.model ? { model: x.model as string } : {}),
      ...(x.imageSet ? { imageSet: x.imageSet as string } : {}),
    };
  });
  return { format: CATALOG_FORMAT, files };
}

export function serializeCatalog(files: readonly CatalogFile[]): string {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  // one file per line: readable, and diffs of a re-written mirror stay small
  return `{"format": ${CATALOG_FORMAT}, "files": [\n${sorted.map((f) => JSON.stringify(f)).join(',\n')}\n]}\n`;
}

/** The URL of a catalog path under a mirror base (each segment encoded). */
export function catalogUrl(base: string, path: string): string {
  return base + path.split('/').map(encodeURIComponent).join('/');
}

/**
 * A mirror's catalog, or none (no catalog there, unreachable, or unreadable: the mirror is
 * then used by the path convention alone) with a notice for the last two.
 */
export async function loadCatalog(
  fetchFn: typeof fetch,
  base: string,
  signal?: AbortSignal,
): Promise<{ catalog?: Catalog; notice?: string }> {
  const url = `${base}${CATALOG_FILE}`;
  try {
    const res = await fetchFn(url, { signal });
    if (res.status === 404) return {};
    if (!res.ok) return { notice: `${url} answered ${res.status}; the mirror is used without its catalog.` };
    return { catalog: parseCatalog(await res.text(), url) };
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    if (e instanceof QpError) return { notice: `${e.message} Until then the mirror is used without it.` };
    return { notice: `${url} could not be read (${(e as Error).message}); the mirror is used without its catalog.` };
  }
}
