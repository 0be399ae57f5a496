/**
 * Data sets from labelled image files, the class index, and seeded calibration/evaluation splits.
 *
 * Why: Node (folders) and the browser (dropped files, fetched samples) build the same
 * Dataset from a list of named files, so labelling and splitting must be one shared,
 * deterministic implementation.
 * Must not: import node: modules, read file contents (bytes are read lazily by consumers),
 * or use Math.random (splits must be reproducible from the seed).
 */
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import type { Dataset, ImageSource } from './types.ts';
import { QpError } from '../util/errors.ts';

/** File extensions treated as images (case-insensitive). */
export const IMAGE_EXTENSIONS = ['.jpeg', '.jpg', '.png'] as const;

const WNID_RE = /^n\d{8}/;

/**
 * Validate a Keras-style class index {"0": ["n01440764", "tench"], …} and return it as an
 * array indexed by class. Keys must be exactly 0..N−1; wnids must be unique non-empty strings.
 */
export function loadClassIndex(json: unknown): [string, string][] {
  const bad = (what: string) =>
    new QpError(
      'LABELS_INVALID',
      `The class index is not valid: ${what}. It must be a JSON object like {"0": ["n01440764", "tench"], "1": […], …} with keys 0..N−1 (e.g. imagenet_class_index.json).`,
    );
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw bad('it is not a JSON object');
  const entries = Object.entries(json as Record<string, unknown>);
  if (entries.length === 0) throw bad('it is empty');
  const out: [string, string][] = new Array(entries.length);
  const seen = new Map<string, number>();
  for (const [k, v] of entries) {
    if (!/^(0|[1-9]\d*)$/.test(k)) throw bad(`key "${k}" is not a class number`);
    const idx = Number(k);
    if (idx >= entries.length)
      throw bad(`class numbers must run from 0 to ${entries.length - 1} without gaps, but ${idx} appears`);
    if (!Array.isArray(v) || v.length < 2 || typeof v[0] !== 'string' || typeof v[1] !== 'string' || !v[0]) {
      throw bad(`entry "${k}" is not a pair [wnid, name]`);
    }
    const prev = seen.get(v[0]);
    if (prev !== undefined) throw bad(`WordNet id ${v[0]} appears twice (classes ${prev} and ${idx})`);
    seen.set(v[0], idx);
    out[idx] = [v[0], v[1]];
  }
  return out;
}

export interface NamedFile {
  /** file name, optionally with a relative path ("n01440764/img_1.JPEG") */
  name: string;
  read(): Promise<Uint8Array>;
}

export interface FileDataset extends Dataset {
  /** number of files that were not used (not an image, or no known WordNet id) */
  ignored: number;
  /** their names (for messages; at most 20) */
  ignoredNames: string[];
}

function extOf(name: string): string {
  const base = name.slice(name.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot < 0 ? '' : base.slice(dot).toLowerCase();
}

/**
 * The WordNet id a file is labelled with: the start of its base name (`n01440764.JPEG`,
 * `n01440764_tench.JPEG`, `n01440764_123.JPEG`), else the start of its parent folder's name
 * (ImageFolder layout `n01440764/xyz.JPEG`). Undefined when neither starts with n + 8 digits.
 */
export function wnidOfFileName(name: string): string | undefined {
  const parts = name.replace(/\\/g, '/').split('/');
  const base = parts[parts.length - 1];
  const m = WNID_RE.exec(base) ?? (parts.length > 1 ? WNID_RE.exec(parts[parts.length - 2]) : null);
  return m ? m[0] : undefined;
}

/**
 * Build a Dataset from named files. The label comes from the WordNet id in the file name
 * (see wnidOfFileName); files with another extension or an unknown wnid are ignored and
 * counted. Items are sorted by name (code-unit order) so the result does not depend on the
 * order the files were listed in. Item ids are the file names.
 */
export function datasetFromFiles(files: NamedFile[], classIndex: [string, string][], name = 'images'): FileDataset {
  const byWnid = new Map<string, number>();
  classIndex.forEach(([wnid], i) => byWnid.set(wnid, i));
  const items: ImageSource[] = [];
  const ignoredNames: string[] = [];
  let ignored = 0;
  let images = 0;
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const f of sorted) {
    const isImage = (IMAGE_EXTENSIONS as readonly string[]).includes(extOf(f.name));
    const wnid = isImage ? wnidOfFileName(f.name) : undefined;
    const label = wnid !== undefined ? byWnid.get(wnid) : undefined;
    if (isImage) images++;
    if (label === undefined) {
      ignored++;
      if (ignoredNames.length < 20) ignoredNames.push(f.name);
      continue;
    }
    items.push({ id: f.name, label, read: () => f.read() });
  }
  if (items.length === 0) {
    const seen =
      files.length === 0
        ? 'no files'
        : `${files.length} file(s), ${images} of them images, none named after a known class`;
    throw new QpError(
      'DATA_EMPTY',
      `No usable images were found (${seen}). The folder should contain JPEG images named after the WordNet id of their class, ` +
        'such as n01440764.JPEG or n01440764_tench.JPEG (or sub-folders named n01440764/), with ids from the class index.',
    );
  }
  return { name, classes: classIndex.length, classNames: classIndex, items, ignored, ignoredNames };
}

function checkCount(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) {
    throw new QpError('ARG_INVALID', `The ${what} must be a whole number of at least 0 (got ${v}).`);
  }
}

/** The most evaluation images available when `calib` images are used for calibration. */
export function maxEval(n: number, calib: number): number {
  return Math.max(0, n - calib);
}

/**
 * Seeded, disjoint calibration and evaluation index sets over n images, each sorted.
 *
 * One seeded permutation of 0..n−1 is drawn (Fisher–Yates, xoroshiro128+). The evaluation
 * set is its FIRST evalCount entries and the calibration set its LAST calib entries, so:
 * changing the calibration size never changes the evaluation images (and vice versa), and a
 * larger set contains the smaller one for the same seed. Requires calib + evalCount ≤ n.
 */
export function sampleSplits(
  n: number,
  calib: number,
  evalCount: number,
  seed: number,
): { calib: number[]; eval: number[] } {
  checkCount('number of images', n);
  checkCount('calibration size', calib);
  checkCount('evaluation size', evalCount);
  if (!Number.isInteger(seed)) throw new QpError('ARG_INVALID', `The seed must be a whole number (got ${seed}).`);
  if (calib + evalCount > n) {
    throw new QpError(
      'DATA_TOO_FEW_IMAGES',
      `The data set has ${n} usable images, but ${calib} calibration + ${evalCount} evaluation images = ${calib + evalCount} were requested. ` +
        `Use fewer (at most ${maxEval(n, calib)} evaluation images with ${calib} for calibration) or add images.`,
    );
  }
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  // pure-rand seeds are 32-bit; fold larger seeds in so they still matter.
  const rng = xoroshiro128plus((seed | 0) ^ Math.floor(seed / 2 ** 32));
  for (let i = n - 1; i > 0; i--) {
    const j = uniformInt(rng, 0, i);
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  const evalIdx = Array.from(perm.subarray(0, evalCount)).sort((a, b) => a - b);
  const calibIdx = Array.from(perm.subarray(n - calib, n)).sort((a, b) => a - b);
  return { calib: calibIdx, eval: evalIdx };
}
