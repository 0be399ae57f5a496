/**
 * The links `npm run bench` prints (`--links`) and writes into each `--json` record
 * (`url`): the same hash the app opens to the same config, model and images. The model
 * is named by its sha256 and source — `registry:<id>` when the bytes are one of the
 * registry's downloads, else `file:<name>` (the app finds a dev-server file of that name
 * with that hash, or asks for the file); the images by their fingerprint and
 * `registry:<set>` for a registry image set, else `folder:<name>` (the app takes a folder
 * named like the sample for it, checking the fingerprint).
 * The engine is wasm: the CPU build that gives the CLI's numbers.
 */
import path from 'node:path';
import type { ExperimentConfig } from '../lib/config/types.ts';
import { serializeLink, type DataSourceRef, type LinkExtras } from '../lib/config/link.ts';
import { getModelEntry } from '../lib/models/registry.ts';

export interface CliLinkInputs {
  modelPath: string;
  modelSha256: string;
  /** the config's model id (a registry id or sha256:<hex>) */
  modelId: string;
  /** how the link names the images: the registry set, or the folder by its name */
  dataSource: DataSourceRef;
  fingerprint: string;
  /** analysis images when --analyze is on */
  analyze?: number;
}

/**
 * The model's source: the registry when `--model` named it (any known copy of its weights,
 * from a mirror or its public URL) or when the bytes are one of its downloads (by hash);
 * else the file by its name.
 */
export function cliModelSource(
  i: Pick<CliLinkInputs, 'modelPath' | 'modelSha256' | 'modelId'>,
): NonNullable<LinkExtras['model']>['source'] {
  if (i.modelPath === i.modelId) return { kind: 'registry', id: i.modelId };
  if (!i.modelId.startsWith('sha256:')) {
    try {
      if (getModelEntry(i.modelId).downloads.some((d) => d.sha256 === i.modelSha256))
        return { kind: 'registry', id: i.modelId };
    } catch {
      /* not a registry id */
    }
  }
  return { kind: 'file', name: path.basename(i.modelPath) };
}

export function cliExtras(i: CliLinkInputs): LinkExtras {
  return {
    model: { sha256: i.modelSha256, source: cliModelSource(i) },
    data: { fingerprint: i.fingerprint, source: i.dataSource },
    engine: 'wasm',
    ...(i.analyze !== undefined ? { analyze: i.analyze } : {}),
  };
}

/** "#v=1&backend=…&msha=…": the hash fragment the app opens to this run. */
export function cliLink(config: ExperimentConfig, i: CliLinkInputs): string {
  return `#${serializeLink(config, [], cliExtras(i))}`;
}
