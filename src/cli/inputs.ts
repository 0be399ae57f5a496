/**
 * The CLI's model and images: a file and a folder, or registry names — `--model
 * mobilenet-v2` (the registry's file, from QP_MIRROR's mirrors, then its public URL) and
 * `--data imagenet-sample` (the registry's image set) — downloaded once into the cache
 * folder (src/cli/registry-downloads.ts), verified, and named in links by the registry so
 * the link opens on the public site with nothing to pick.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { QpError } from '../lib/util/errors.ts';
import type { DataSourceRef } from '../lib/config/link.ts';
import { loadImageFolder } from '../lib/data/dataset.node.ts';
import type { FileDataset } from '../lib/data/dataset.ts';
import { progressText } from '../lib/data/downloads.ts';
import { IMAGE_SET_REGISTRY } from '../lib/data/image-sets.ts';
import type { RegistryImages } from '../lib/data/registry-images.ts';
import { MODEL_REGISTRY } from '../lib/models/registry.ts';
import { sniffOnnx } from '../lib/models/identify.ts';
import { cliRegistryDownloads } from './registry-downloads.ts';

export interface CliInputs {
  modelBytes: Uint8Array;
  dataset: FileDataset;
  /** how a link names the images */
  dataSource: DataSourceRef;
  /** a registry image set: downloads the files of these splits first (a folder: nothing to do) */
  prefetch(splits: readonly { calib: number; eval: number; seed: number }[]): Promise<void>;
}

/** A file the command line names, read whole; FILE_NOT_FOUND naming `what` and the path. */
export async function readInput(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new QpError('FILE_NOT_FOUND', `${what} "${path}" does not exist.`);
    if (code === 'EISDIR') throw new QpError('FILE_NOT_FOUND', `${what} "${path}" is a folder; give the .onnx file.`);
    throw new QpError('FILE_NOT_FOUND', `${what} "${path}" could not be read (${code ?? (e as Error).message}).`);
  }
}

const isModelId = (s: string) => MODEL_REGISTRY.some((e) => e.id === s);
const isImageSetId = (s: string) => IMAGE_SET_REGISTRY.some((e) => e.id === s);

/** Reads `--model` and `--data`: a path where one exists, else a registry name, else FILE_NOT_FOUND. */
export async function cliInputs(args: { model: string; data: string; labels?: string }): Promise<CliInputs> {
  const registry =
    (!existsSync(args.model) && isModelId(args.model)) || (!existsSync(args.data) && isImageSetId(args.data));
  const downloads = registry ? cliRegistryDownloads() : undefined;
  let modelBytes: Uint8Array;
  if (!existsSync(args.model) && isModelId(args.model)) {
    process.stderr.write(`model ${args.model} from the registry (cache ${downloads!.cacheDir})\n`);
    modelBytes = (await downloads!.modelFile(args.model)).bytes;
  } else {
    modelBytes = await readInput(args.model, 'Model file');
  }
  // a file that is no model is named before the images are looked at
  sniffOnnx(modelBytes, args.model);
  if (!existsSync(args.data) && isImageSetId(args.data)) {
    const images: RegistryImages = await downloads!.openImages(args.data);
    return {
      modelBytes,
      dataset: images.dataset,
      dataSource: { kind: 'registry', id: args.data },
      async prefetch(splits) {
        const files = [...new Map(splits.flatMap((s) => images.filesFor(s)).map((f) => [f.sha256, f])).values()];
        let last = '';
        await images.prefetch(files, {
          onProgress: (p) => {
            const line = `[download] ${progressText(p, 'images')}`;
            if (p.files === p.totalFiles || line.slice(0, 24) !== last) process.stderr.write(`${line}\n`);
            last = line.slice(0, 24);
          },
        });
      },
    };
  }
  const dataset = await loadImageFolder(args.data, args.labels);
  return { modelBytes, dataset, dataSource: { kind: 'folder', name: dataset.name }, prefetch: async () => undefined };
}
