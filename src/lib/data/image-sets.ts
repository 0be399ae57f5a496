/**
 * The named image sets the app and CLI offer, like the model registry: where the files
 * live publicly (an ordered list of hosts that send CORS headers, pinned to a commit so
 * the bytes cannot change), and an embedded manifest with every file's public name, byte
 * size and sha256, so a download is verified without trusting the host and only the
 * images an experiment needs are fetched.
 *
 * Items of a registry set are named `{wnid}.JPEG`, as in a local copy of the sample
 * (../shared/data/imagenet-sample, a CLI folder): the same names and labels give the same
 * data fingerprint and the same calibration/evaluation split, so a link made from a folder
 * and one made from the registry name the same images.
 *
 * Pure data plus lookups; the manifest module (one row per image) is imported lazily.
 * Must not: fetch (downloads.ts does), or touch the file system.
 */
import { QpError } from '../util/errors.ts';
import { datasetFromFiles, sampleSplits, type FileDataset } from './dataset.ts';

export type ImageSetId = 'imagenet-sample';

/** One line of an embedded manifest. */
export interface ManifestRow {
  wnid: string;
  /** class name, the second field of the class index */
  name: string;
  bytes: number;
  sha256: string;
}

/** One image of a registry set. */
export interface ImageFile extends ManifestRow {
  /** class number (the row's position in the class index) */
  label: number;
  /** the file's name at the public source and in a mirror, e.g. `n01440764_tench.JPEG` */
  file: string;
  /** the item id, as in a local copy: `n01440764.JPEG` */
  id: string;
}

export interface ImageSetManifest {
  files: ImageFile[];
  /** class → [wnid, name], rebuilt from the rows */
  classIndex: [string, string][];
}

/** A public host of the set's files, under their public names. */
export interface PublicSource {
  /** host name as users know it */
  name: string;
  /** base URL; a file is `${base}${encodeURIComponent(file)}` */
  base: string;
}

export interface ImageSetEntry {
  id: ImageSetId;
  label: string;
  description: string;
  /** terms of use a user must be told */
  terms: string;
  /** the set's folder inside a mirror written by `npm run mirror` */
  folder: string;
  /** public hosts, tried in order after any configured mirror */
  sources: PublicSource[];
  images: number;
  /** sum of all files' sizes */
  totalBytes: number;
  /** the class index file a mirror carries beside the images (the app embeds it) */
  classIndexFile: { name: string; bytes: number; sha256: string };
  load(): Promise<ImageSetManifest>;
}

const SAMPLE_REPO = 'EliSchwartz/imagenet-sample-images';
/** branch master at the time the sample was taken; a commit, so the files cannot change */
export const SAMPLE_COMMIT = 'bc69043e2862758a1906c6a24a792bb28c6bb2ff';

const HEX64 = /^[0-9a-f]{64}$/;

/** Rows as the manifest modules store them: "wnid\tname\tbytes\tsha256" lines. */
export function serializeManifestRows(rows: readonly ManifestRow[]): string {
  return rows.map((r) => `${r.wnid}\t${r.name}\t${r.bytes}\t${r.sha256}`).join('\n');
}

/** Parses and checks embedded manifest rows (a broken build must fail loudly, not mislabel). */
export function parseManifestRows(text: string): ManifestRow[] {
  return text
    .trim()
    .split('\n')
    .map((line, i) => {
      const [wnid, name, bytes, sha256, extra] = line.split('\t');
      const n = Number(bytes);
      if (!/^n\d{8}$/.test(wnid ?? '') || !name || !Number.isInteger(n) || n <= 0 || !HEX64.test(sha256 ?? '') || extra)
        throw new QpError('INTERNAL', `Embedded image manifest line ${i + 1} is malformed: "${line.slice(0, 120)}".`);
      return { wnid, name, bytes: n, sha256 };
    });
}

/** The public file name of a row: `{wnid}_{name}.JPEG`. */
export function publicFileName(r: Pick<ManifestRow, 'wnid' | 'name'>): string {
  return `${r.wnid}_${r.name}.JPEG`;
}

/** The manifest of rows in class order. */
export function manifestFromRows(rows: readonly ManifestRow[]): ImageSetManifest {
  const files = rows.map((r, label) => ({ ...r, label, file: publicFileName(r), id: `${r.wnid}.JPEG` }));
  return { files, classIndex: rows.map((r) => [r.wnid, r.name]) };
}

/**
 * The class index as Keras' imagenet_class_index.json writes it (Python's json.dumps:
 * `{"0": ["n01440764", "tench"], …}`), byte for byte, so a mirror's copy has the sha256
 * the registry names.
 */
export function classIndexText(classIndex: readonly [string, string][]): string {
  return `{${classIndex.map(([w, n], i) => `"${i}": [${JSON.stringify(w)}, ${JSON.stringify(n)}]`).join(', ')}}`;
}

let sampleManifest: Promise<ImageSetManifest> | undefined;

export const IMAGE_SET_REGISTRY: readonly ImageSetEntry[] = [
  {
    id: 'imagenet-sample',
    label: 'ImageNet sample (1,000 images, one per class)',
    description:
      'One image per ImageNet-1k class from the public repository EliSchwartz/imagenet-sample-images. ' +
      'These images are "easy": a MobileNet-V2 scores about 83% top-1 here against about 72% on the official ' +
      'validation set, so report "sample top-1", never ImageNet top-1.',
    terms: 'ImageNet terms of use apply: research and teaching only.',
    folder: 'imagenet-sample/',
    sources: [
      {
        name: 'GitHub (raw.githubusercontent.com)',
        base: `https://raw.githubusercontent.com/${SAMPLE_REPO}/${SAMPLE_COMMIT}/`,
      },
      { name: 'jsDelivr (cdn.jsdelivr.net)', base: `https://cdn.jsdelivr.net/gh/${SAMPLE_REPO}@${SAMPLE_COMMIT}/` },
    ],
    images: 1000,
    totalBytes: 109_576_417,
    classIndexFile: {
      name: 'imagenet_class_index.json',
      bytes: 35_363,
      sha256: 'a1e7a966a1f601d39e4b43e119b3e7dd4a2ad3ea08cf69847cbaf021013767bc',
    },
    load: () =>
      (sampleManifest ??= import('./manifests/imagenet-sample.ts').then((m) =>
        manifestFromRows(parseManifestRows(m.IMAGENET_SAMPLE_ROWS)),
      )),
  },
];

/** The registry entry for `id`. Throws ARG_INVALID naming the known ones. */
export function getImageSet(id: string): ImageSetEntry {
  const e = IMAGE_SET_REGISTRY.find((x) => x.id === id);
  if (!e) {
    const known = IMAGE_SET_REGISTRY.map((x) => x.id).join(', ');
    throw new QpError('ARG_INVALID', `There is no image set named "${id}". Choose ${known}, or load your own images.`);
  }
  return e;
}

/**
 * The URLs of one file, in the order they are tried: each mirror's copy (`${mirror}${folder}${file}`),
 * then the public sources.
 */
export function imageUrls(entry: ImageSetEntry, file: string, mirrors: readonly string[] = []): string[] {
  const f = encodeURIComponent(file);
  return [...mirrors.map((m) => `${m}${entry.folder}${f}`), ...entry.sources.map((s) => `${s.base}${f}`)];
}

/**
 * The files a config's split reads: calibration and evaluation images (an analysis reads
 * evaluation images only), in item order. Throws DATA_TOO_FEW_IMAGES as sampleSplits does.
 */
export function filesForSplit(m: ImageSetManifest, calib: number, evalCount: number, seed: number): ImageFile[] {
  const byId = [...m.files].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const split = sampleSplits(byId.length, calib, evalCount, seed);
  return [...split.calib, ...split.eval].sort((a, b) => a - b).map((i) => byId[i]);
}

/** Total bytes of files. */
export function bytesOf(files: readonly { bytes: number }[]): number {
  return files.reduce((s, f) => s + f.bytes, 0);
}

/**
 * The set as a Dataset whose items read through `read` (a verified, cached download):
 * item ids `{wnid}.JPEG` as in a local copy, so fingerprints and splits match it.
 */
export function imageSetDataset(
  entry: ImageSetEntry,
  m: ImageSetManifest,
  read: (f: ImageFile) => Promise<Uint8Array>,
): FileDataset {
  const ds = datasetFromFiles(
    m.files.map((f) => ({ name: f.id, read: () => read(f) })),
    m.classIndex,
    entry.id,
  );
  return { ...ds, cacheNamespace: `registry:${entry.id}` };
}
