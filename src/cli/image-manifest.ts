/**
 * The embedded manifest of the `imagenet-sample` image set, computed from a local copy of
 * the sample (../shared/data layout: `imagenet-sample/{wnid}.JPEG` and
 * `imagenet_class_index.json`): one row per class, in class order, with the public file's
 * name parts, byte size and sha256. `scripts/make-image-manifest.ts` writes it as a module;
 * the integration test recomputes it to prove the checked-in one current.
 * Must not: download anything (the public files are identical, not fetched here).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readClassIndexFile } from '../lib/data/dataset.node.ts';
import { serializeManifestRows, type ManifestRow } from '../lib/data/image-sets.ts';
import { QpError } from '../lib/util/errors.ts';

/** Rows for every class of the class index, from `{dir}/imagenet-sample/{wnid}.JPEG`. */
export async function buildSampleManifest(dir: string): Promise<ManifestRow[]> {
  const classIndex = await readClassIndexFile(join(dir, 'imagenet_class_index.json'));
  return Promise.all(
    classIndex.map(async ([wnid, name]) => {
      const file = join(dir, 'imagenet-sample', `${wnid}.JPEG`);
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch {
        throw new QpError('FILE_NOT_FOUND', `${file} is missing: the sample needs one image per class.`);
      }
      return { wnid, name, bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
    }),
  );
}

/** The module text of src/lib/data/manifests/imagenet-sample.ts. */
export function manifestModule(rows: ManifestRow[]): string {
  return [
    '// Written by `npm run make-image-manifest` from ../shared/data; do not edit by hand.',
    '// One line per class, in class order: WordNet id, class name (the public file is',
    '// `{wnid}_{name}.JPEG`), byte size, sha256. Parsed by ../image-sets.ts.',
    `export const IMAGENET_SAMPLE_ROWS = \`${serializeManifestRows(rows)}\`;`,
    '',
  ].join('\n');
}
