/**
 * Node-only data access: image folders on disk and a file-based crop cache.
 *
 * Why: the CLI and tests read data sets from folders and keep preprocessed crops between
 * runs; the browser has its own equivalents (File objects, IndexedDB).
 * Must not: be imported by browser code (it uses node:fs), or leave a half-written crop in
 * the cache (writes go to a temp file that is renamed into place).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Dirent } from 'node:fs';
import type { CropStore } from './types.ts';
import { datasetFromFiles, loadClassIndex, type FileDataset, type NamedFile } from './dataset.ts';
import { QpError } from '../util/errors.ts';

export const CLASS_INDEX_FILE = 'imagenet_class_index.json';

export interface FolderDataset extends FileDataset {
  /** absolute folder path */
  dir: string;
  /** short hash of the folder path, for PrepareCropsOptions.namespace */
  cacheNamespace: string;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** Read and validate a class index JSON file. */
export async function readClassIndexFile(file: string): Promise<[string, string][]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new QpError(
      'LABELS_INVALID',
      `The class index ${file} could not be read (${(e as NodeJS.ErrnoException).code ?? String(e)}). Check the path.`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new QpError('LABELS_INVALID', `The class index ${file} is not valid JSON (${(e as Error).message}).`);
  }
  try {
    return loadClassIndex(json);
  } catch (e) {
    if (e instanceof QpError) throw new QpError(e.code, `${file}: ${e.message}`);
    throw e;
  }
}

/**
 * Load a folder of labelled images (see datasetFromFiles for naming; one level of
 * ImageFolder-style sub-folders is also read). The class index defaults to
 * imagenet_class_index.json in the folder or its parent.
 */
export async function loadImageFolder(dir: string, labelsFile?: string): Promise<FolderDataset> {
  const abs = path.resolve(dir);
  let st;
  try {
    st = await stat(abs);
  } catch {
    throw new QpError(
      'DATA_NOT_FOUND',
      `The image folder ${abs} does not exist. Check the path (it should contain files like n01440764.JPEG).`,
    );
  }
  if (!st.isDirectory()) {
    throw new QpError('DATA_NOT_FOUND', `${abs} is a file, not a folder. Pass the folder that contains the images.`);
  }
  let labels: string;
  if (labelsFile) {
    labels = path.resolve(labelsFile);
    if (!(await isFile(labels))) {
      throw new QpError(
        'LABELS_INVALID',
        `The class index file ${labels} does not exist. Pass an existing ${CLASS_INDEX_FILE}-style file.`,
      );
    }
  } else {
    const candidates = [path.join(abs, CLASS_INDEX_FILE), path.join(path.dirname(abs), CLASS_INDEX_FILE)];
    const found = [];
    for (const c of candidates) if (await isFile(c)) found.push(c);
    if (found.length === 0) {
      throw new QpError(
        'LABELS_INVALID',
        `No class index found: looked for ${candidates.join(' and ')}. Put ${CLASS_INDEX_FILE} beside the images or pass the labels file explicitly.`,
      );
    }
    labels = found[0];
  }
  const classIndex = await readClassIndexFile(labels);

  const files: NamedFile[] = [];
  for (const e of await readdir(abs, { withFileTypes: true })) {
    const p = path.join(abs, e.name);
    const kind = await entryKind(e, p);
    if (kind === 'file') {
      files.push({ name: e.name, read: () => readBytes(p) });
    } else if (kind === 'dir' && !e.name.startsWith('.')) {
      for (const s of await readdir(p, { withFileTypes: true })) {
        const q = path.join(p, s.name);
        if ((await entryKind(s, q)) !== 'file') continue;
        files.push({ name: `${e.name}/${s.name}`, read: () => readBytes(q) });
      }
    }
  }
  // the class index file itself is not an image; datasetFromFiles ignores it by extension
  const ds = datasetFromFiles(
    files.filter((f) => f.name !== CLASS_INDEX_FILE),
    classIndex,
    path.basename(abs),
  );
  const cacheNamespace = createHash('sha256').update(abs).digest('hex').slice(0, 12);
  return { ...ds, dir: abs, cacheNamespace };
}

/**
 * File, folder or neither; a symbolic link counts as what it points to (people link data
 * sets into place), a broken link as neither.
 */
async function entryKind(e: Dirent, p: string): Promise<'file' | 'dir' | undefined> {
  if (e.isFile()) return 'file';
  if (e.isDirectory()) return 'dir';
  if (!e.isSymbolicLink()) return undefined;
  try {
    const st = await stat(p);
    return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : undefined;
  } catch {
    return undefined;
  }
}

async function readBytes(p: string): Promise<Uint8Array> {
  const b = await readFile(p);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export const DEFAULT_CROP_CACHE_DIR = path.join('node_modules', '.cache', 'qplay', 'crops');

/** Make one key segment safe as a file name (no separators, no "..", printable ASCII). */
function safeSegment(s: string): string {
  const enc = s.replace(/[^A-Za-z0-9._-]/g, (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0'));
  return enc === '.' || enc === '..' || enc === '' ? `%${enc}` : enc;
}

/**
 * CropStore on disk: one raw file per crop at <cacheDir>/<key segments>.rgb. A key's "/"
 * separate folders; anything else unsafe is %-escaped. Writes are atomic (temp + rename).
 */
export class DiskCropStore implements CropStore {
  readonly dir: string;
  constructor(cacheDir: string = DEFAULT_CROP_CACHE_DIR) {
    this.dir = path.resolve(cacheDir);
  }

  pathFor(key: string): string {
    return path.join(this.dir, ...key.split('/').map(safeSegment)) + '.rgb';
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      const b = await readFile(this.pathFor(key));
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new QpError('STORAGE_FAILED', `Could not read cached crop ${key} (${(e as Error).message}).`);
    }
  }

  async put(key: string, crop: Uint8Array): Promise<void> {
    const file = this.pathFor(key);
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(tmp, crop);
      await rename(tmp, file);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      const code = (e as NodeJS.ErrnoException).code;
      throw new QpError(
        code === 'ENOSPC' || code === 'EDQUOT' ? 'STORAGE_QUOTA' : 'STORAGE_FAILED',
        `Could not write cached crop to ${file} (${code ?? (e as Error).message}). Free disk space or choose another cache folder.`,
      );
    }
  }
}
