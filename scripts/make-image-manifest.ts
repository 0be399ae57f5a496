/**
 * Writes src/lib/data/manifests/imagenet-sample.ts, the embedded manifest of the
 * registry's `imagenet-sample` image set: for every class, in class order, its WordNet id,
 * name (the second field of the class index, part of the public file name
 * `{wnid}_{name}.JPEG`), byte size and sha256, computed from ../shared/data (the same
 * files renamed `{wnid}.JPEG`). Run after the sample changes: `npm run make-image-manifest`.
 * tests/integration/image-sets.test.ts checks the checked-in file against the data.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildSampleManifest, manifestModule } from '../src/cli/image-manifest.ts';
import { parseCliOrExit } from '../src/cli/options.ts';
import { MAKE_IMAGE_MANIFEST_CLI } from './cli-specs.ts';

parseCliOrExit(MAKE_IMAGE_MANIFEST_CLI);
const shared = resolve(process.env.QP_SHARED_DATA ?? resolve(import.meta.dirname, '../../shared/data'));
const out = resolve(import.meta.dirname, '../src/lib/data/manifests/imagenet-sample.ts');
const rows = await buildSampleManifest(shared);
writeFileSync(out, manifestModule(rows));
const bytes = rows.reduce((s, r) => s + r.bytes, 0);
console.log(`${out}: ${rows.length} images, ${(bytes / 1e6).toFixed(1)} MB`);
